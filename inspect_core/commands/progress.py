"""Rich progress bars for long-running commands.

Log lines and labels are data (dataset folders, file names): they are printed literally, one
line each (:func:`inspect_core.text.terminal_text`), never read as markup or wrapped.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from inspect_core.text import terminal_text

Log = Callable[[str], None]
TrainProgress = Callable[[int, int, int, float], None]  # (epoch, step, steps, mean loss)


class Advance(Protocol):
    """Moves an :func:`item_progress` bar on by ``n`` items."""

    def __call__(self, n: int = 1) -> None: ...


def _printer(console: Console) -> Callable[[str], None]:
    def log(msg: str) -> None:
        console.print(terminal_text(msg), markup=False, highlight=False, soft_wrap=True)

    return log


@contextlib.contextmanager
def train_progress() -> Iterator[tuple[Log, TrainProgress | None]]:
    """Yields (log, progress) callbacks for :func:`inspect_core.training.trainer.train`."""
    console = Console(stderr=True)
    if not sys.stderr.isatty():
        yield _printer(console), None
        return
    with Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # the bar draws on stderr; stdout stays the command's (a `--json > file` gets it all)
        redirect_stdout=False,
        redirect_stderr=False,
    ) as bar:
        task = bar.add_task("train", total=1, epoch=0, loss=0.0)

        def progress(epoch: int, step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, epoch=epoch, loss=loss)

        yield _printer(bar.console), progress


@contextlib.contextmanager
def item_progress(total: int, label: str) -> Iterator[Advance]:
    """A progress bar over ``total`` items; yields ``advance()``. Silent when not a terminal."""
    console = Console(stderr=True)
    if not sys.stderr.isatty() or total < 2:
        yield lambda n=1: None
        return
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # the bar draws on stderr; stdout stays the command's (a `--json > file` gets it all)
        redirect_stdout=False,
        redirect_stderr=False,
    ) as bar:
        task = bar.add_task(terminal_text(label), total=total)
        yield lambda n=1: bar.advance(task, n)
