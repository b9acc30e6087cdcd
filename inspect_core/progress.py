"""Rich progress bars for long-running commands."""
from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextlib.contextmanager
def train_progress():
    """Yields (log, progress) callbacks for :func:`inspect_core.train.train`."""
    console = Console(stderr=True)
    if not sys.stderr.isatty():
        yield (lambda msg: console.print(msg, markup=False, highlight=False)), None
        return
    with Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("train", total=1, epoch=0, loss=0.0)

        def progress(epoch, step, steps, loss):
            bar.update(task, completed=step, total=steps, epoch=epoch, loss=loss)

        yield (lambda msg: bar.console.print(msg, markup=False, highlight=False)), progress


@contextlib.contextmanager
def item_progress(total: int, label: str):
    """A progress bar over ``total`` items; yields ``advance()``. Silent when not a terminal."""
    console = Console(stderr=True)
    if not sys.stderr.isatty() or total < 2:
        yield lambda n=1: None
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
