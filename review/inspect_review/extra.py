"""The ``review`` extra: the page's libraries are optional, so a station installs none of them.
:func:`require` imports them and, when one is missing, says how to install it."""

from __future__ import annotations

import importlib

from inspect_core.errors import InspectError

#: import name -> the distribution that provides it
WEB = {
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "jinja2": "jinja2",
    "python_multipart": "python-multipart",
    "argon2": "argon2-cffi",
}
INSTALL = "pip install -e '.[review]'"


def require(*names: str) -> None:
    """Import ``names`` (default: everything the page needs); :class:`InspectError` naming
    what is missing and the install command otherwise."""
    missing = []
    for name in names or tuple(WEB):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(WEB.get(name, name))
    if missing:
        raise InspectError(
            f"the review page needs {', '.join(missing)} (the 'review' extra), which "
            f"{'is' if len(missing) == 1 else 'are'} not installed here; run: {INSTALL}"
        )
