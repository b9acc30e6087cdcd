"""What the scripts in this folder share: an argument parser whose ``--help`` shows the
script's docstring, and a way to run ``main`` that ends with a one-line error instead of a
traceback when a model or dataset is missing (:class:`~inspect_core.errors.InspectError`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from inspect_core.errors import InspectError


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser showing ``doc`` (the script's docstring) as it is written."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run(main: Callable[[], None]) -> None:
    """Call ``main``; an :class:`InspectError` (a missing model or dataset: the message says
    which) or a file that cannot be read (a mistyped run folder) exits with ``error: ...`` and
    status 1."""
    try:
        main()
    except InspectError as e:
        raise SystemExit(f"error: {e}") from None
    except FileNotFoundError as e:
        raise SystemExit(
            f"error: {e.filename}: no such file; check the path (a run folder holds "
            "model.onnx and model.json)"
        ) from None
