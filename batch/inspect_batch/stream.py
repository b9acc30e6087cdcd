"""Chunks of items submitted to Dask with a bounded number in flight, results as they finish.

Every task costs the scheduler memory and every result the client: a million images sent at
once would not fit either. So the items are cut into chunks (hundreds of images each: a task's
overhead is milliseconds, an image's tens of them), at most ``in_flight`` chunks are out at a
time, and a new one is submitted as each finishes (``as_completed`` and ``add``). The client
holds the chunks in flight and nothing else; the caller consumes results as they come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), lazily."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def stream(
    client: Any,
    fn: Callable[[list[T]], list[R]],
    items: Iterable[T],
    chunk_size: int = 200,
    in_flight: int | Callable[[], int] = 4,
    failed: Callable[[list[T], BaseException], list[R]] | None = None,
) -> Iterator[list[R]]:
    """``fn`` over ``items`` in chunks on the cluster of ``client``; yields each chunk's results
    as it finishes (not in order). At most ``in_flight`` chunks are out at a time (a callable:
    asked again as each finishes, so workers that join later get work too). A chunk whose task
    fails (its worker killed, say) yields ``failed(chunk, error)`` when given, and
    the rest go on; without it the error is raised."""
    from distributed import as_completed  # lazy: history.py uses chunks() without Dask

    limit = in_flight if callable(in_flight) else (lambda: in_flight)
    pending = chunks(items, chunk_size)
    out: dict[Any, list[T]] = {}

    def submit(chunk: list[T]) -> Any:
        future = client.submit(fn, chunk, pure=False)
        out[future] = chunk
        return future

    first = [submit(c) for c in islice(pending, max(1, limit()))]
    if not first:
        return
    done = as_completed(first)  # type: ignore[no-untyped-call]  # distributed: unannotated
    for future in done:
        chunk = out.pop(future)
        try:
            result = future.result()
        except Exception as e:
            if failed is None:
                raise
            result = failed(chunk, e)
        future.release()
        for nxt in islice(pending, max(1, limit() - len(out))):
            done.add(submit(nxt))  # type: ignore[no-untyped-call]  # as above
        yield result
