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
    in_flight: int = 4,
) -> Iterator[list[R]]:
    """``fn`` over ``items`` in chunks on the cluster of ``client``; yields each chunk's results
    as it finishes (not in order). At most ``in_flight`` chunks are submitted at a time."""
    from distributed import as_completed

    pending = chunks(items, chunk_size)
    first = [client.submit(fn, c, pure=False) for c in islice(pending, in_flight)]
    if not first:
        return
    done = as_completed(first)
    for future in done:
        result = future.result()
        future.release()
        nxt = next(pending, None)
        if nxt is not None:
            done.add(client.submit(fn, nxt, pure=False))
        yield result
