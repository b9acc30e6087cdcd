"""The Dask client a backtest runs on: a LocalCluster on this machine, or the scheduler of a
cluster of line PCs or servers (``dask scheduler`` / ``dask worker tcp://HOST:8786``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from inspect_core.errors import InspectError

CONNECT_TIMEOUT_S = 10


class SchedulerUnreachable(InspectError):
    """The scheduler address does not answer (exit code 2)."""


@contextmanager
def dask_client(scheduler: str | None, workers: int = 0) -> Iterator[Any]:
    """A client: of a LocalCluster with ``workers`` single-threaded processes (0: one per core)
    when ``scheduler`` is None, else connected to the scheduler at that address."""
    from distributed import Client, LocalCluster  # lazy: 0.3 s to load, only for a backtest

    if scheduler is None:
        n = workers or max(1, os.cpu_count() or 1)
        # distributed leaves its constructors unannotated: no-untyped-call below
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachable(
            f"--scheduler {scheduler}: no Dask scheduler answers there within "
            f"{CONNECT_TIMEOUT_S} s ({type(e).__name__}); start one with `dask scheduler` on "
            "that machine and workers with `dask worker ADDRESS`, or leave --scheduler out to "
            "run on this machine"
        ) from None
    with client:
        if not client.scheduler_info().get("workers"):
            wait_s = CONNECT_TIMEOUT_S * 6
            try:
                client.wait_for_workers(1, timeout=wait_s)
            except TimeoutError:
                raise SchedulerUnreachable(
                    f"--scheduler {scheduler} answers, but no worker joined it within "
                    f"{wait_s} s: start one there with `dask worker {scheduler}` (with the "
                    "inspect plugins installed), then retry"
                ) from None
        yield client
