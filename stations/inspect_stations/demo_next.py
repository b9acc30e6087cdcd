"""What ``inspect demo`` leaves behind: its folder, made afresh each run (:func:`fresh_folder`),
and the lines it ends with (:func:`next_steps`): what it did, where everything is, and the
commands to run next, ready to paste (paths quoted for the shell, shown relative to the folder
the demo ran in when they are inside it)."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from inspect_core.errors import InspectError
from inspect_core.text import terminal_text

if TYPE_CHECKING:
    from inspect_stations.demo import DemoResult

MARK = ".inspect-demo"  # in a folder `inspect demo` made: the next run may empty it
VERDICTS = ("PASS", "REVIEW", "FAIL", "ERROR", "missing")
REVIEW_USER = "demo"


def fresh_folder(folder: Path) -> Path:
    """``folder``, empty and marked as the demo's: made when missing, emptied when an earlier
    demo made it (that run's database, journals and archives would mix with this one's),
    refused when it holds anything else."""
    if folder.exists() and not folder.is_dir():
        raise InspectError(
            f"{folder} is a file, not a folder: give the demo a folder with --dir "
            "(it is made when missing)"
        )
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARK).is_file():
            raise InspectError(
                f"{folder} is not empty, and no earlier `inspect demo` made it: the demo writes "
                "a database, station folders and a report there. Give a new or empty folder "
                "with --dir, or empty this one"
            )
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text("made by `inspect demo`: its next run empties this folder\n")
    return folder


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    full = path.resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def activate_command() -> str | None:
    """``. .venv/bin/activate`` for the virtual environment this ``inspect`` runs from; None
    outside one, or when its ``inspect`` is the one on PATH already."""
    if sys.prefix == sys.base_prefix:
        return None
    bin_dir = Path(sys.prefix) / "bin"
    script = bin_dir / "activate"
    if not script.is_file():  # Windows has Scripts\activate.bat: say nothing there
        return None
    on_path = shutil.which("inspect")
    if on_path and Path(on_path).resolve().parent == bin_dir.resolve():
        return None
    return ". " + shlex.quote(shown(script))


def _summary(result: DemoResult) -> str:
    got = Counter(s["got"] for s in result.samples)
    verdicts = ", ".join(f"{v} {got[v]}" for v in VERDICTS if got[v])
    overlays = sum(
        1
        for folder in result.workdir.glob("stations/*/archive/overlays")
        for p in folder.rglob("*")
        if p.is_file()
    )
    return (
        f"demo: {len(result.samples)} sample images through {len(result.stations)} stations: "
        f"{verdicts}; {overlays} overlays kept"
    )


def next_steps(result: DemoResult, has_review: bool) -> list[str]:
    """The demo's last lines: what it did, its folder, the commands to run next."""
    folder = shown(result.workdir)
    db = shlex.quote("sqlite:///" + shown(result.workdir / "demo.db"))
    html = shlex.quote(shown(result.workdir / "report.html"))
    stations = shlex.quote(shown(result.workdir / "stations"))
    lines = [
        "",
        _summary(result),
        f"everything is in {folder}/ : the database demo.db, report.html, and under stations/ "
        "each station's archive (images by verdict, overlays/) and state",
        "next:",
    ]
    activate = activate_command()
    if activate:
        lines += ["  # put inspect on PATH in this shell", f"  {activate}"]
    if has_review:
        lines += [
            f"  # the review page: add a demo operator (asks for a password), serve the page, "
            f"open http://127.0.0.1:8600 and log in as {REVIEW_USER}",
            f"  inspect review user add {REVIEW_USER} --role operator --db {db}",
            f"  inspect review serve --db {db} --media-root {stations}",
        ]
    else:
        lines.append(
            "  # the review page is the review plugin's (inspect-review): `make dev` installs it"
        )
    lines += [
        "  # the report as one HTML page, the operators' decisions included",
        f"  inspect report --db {db} --html {html}",
    ]
    return [terminal_text(line) for line in lines]
