"""Reading a recorded image on a worker as the station reads an inbox file: only a regular file
(a symlink's target checked, :mod:`inspect_stations.inputs.regular_files`), its size against
``limits.max_bytes`` before it is opened, and then read no further than that limit.

A record whose source is a device (``/dev/zero`` reads forever), a named pipe (waits for a
writer forever), a folder or a file above the limit is refused unread: that image alone is
counted as unreadable, and its worker goes on with the rest of its chunk.
"""

from __future__ import annotations

import os
from typing import cast

from inspect_stations.config.types import Limits, SixteenBit
from inspect_stations.inputs.regular_files import NotRegularFile, open_regular, special_kind

STATION = Limits()  # a station's defaults: the backtest's, unless --max-bytes/--max-pixels say


class FileRefused(Exception):
    """The record's source is not read: ``str(e)`` says why (the tally names the source)."""


def backtest_limits(sixteen_bit: str, max_bytes: int, max_pixels: int) -> Limits:
    """The station's checks as a backtest applies them: its size, pixel and 16-bit limits; no
    work limit (the candidate's tiles are its own, not the station's recipe's)."""
    return Limits(
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        sixteen_bit=cast(SixteenBit, sixteen_bit),  # a --sixteen-bit choice; Limits checks it
        max_work_mpx=float("inf"),
    )


def read_bytes(url: str, max_bytes: int) -> bytes:
    """The bytes of the file at ``url`` (a path or an fsspec URL), at most ``max_bytes``;
    :class:`FileRefused` for anything but a regular file within the limit."""
    # lazy: fsspec (60 ms) only when a backtest reads an image, not for the limits; it ships
    # no type information
    import fsspec.core  # type: ignore[import-untyped]
    from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]

    fs, path = fsspec.core.url_to_fs(url)
    if isinstance(fs, LocalFileSystem):
        return read_local(path, max_bytes)
    info = fs.info(path)
    if info.get("type") != "file":
        what = info.get("type") or "unknown"
        raise FileRefused(f"of type {what!r}, not a file: never read; {_WHAT_TO_DO}")
    _check_size(info.get("size"), max_bytes)
    with fs.open(path, "rb") as f:
        return _bounded(f.read(max_bytes + 1), max_bytes)


def read_local(path: str, max_bytes: int) -> bytes:
    """A local file, checked as the station checks an inbox file (``os.stat`` follows a
    symlink, as the station's does; the kind is checked again on the opened descriptor, so a
    pipe that took the name meanwhile cannot make the read wait)."""
    st = os.stat(path)
    kind = special_kind(st.st_mode)
    if kind:
        raise FileRefused(_special(path, kind))
    _check_size(st.st_size, max_bytes)
    try:
        with open_regular(path) as f:
            data = f.read(max_bytes + 1)
    except NotRegularFile as e:
        raise FileRefused(_special(path, e.kind)) from None
    return _bounded(data, max_bytes)


_WHAT_TO_DO = (
    "a record's source must be its archived image file; check the station's archive, or "
    "the --path-map that leads there"
)


def _special(path: str, kind: str) -> str:
    """Why a device, pipe, socket or folder is never read (a symlink to one: named so; the
    tally names the record's source itself)."""
    if os.path.islink(path):
        kind = f"a symlink to {kind} ({os.path.realpath(path)})"
    return (
        f"{kind}, not an image file: never read (a device can be read forever, a pipe waits "
        f"for a writer); {_WHAT_TO_DO}"
    )


def _check_size(size: int | None, max_bytes: int) -> None:
    if size is not None and size > max_bytes:
        raise FileRefused(_too_big(f"is {size} bytes", max_bytes))


def _bounded(data: bytes, max_bytes: int) -> bytes:
    """``data``, read with a limit of ``max_bytes + 1``: more than the limit (a file that grew,
    or one whose size was not told) is refused."""
    if len(data) > max_bytes:
        raise FileRefused(_too_big("holds more bytes than its size said", max_bytes))
    return data


def _too_big(what: str, max_bytes: int) -> str:
    return (
        f"file {what}, above the limit of {max_bytes} (--max-bytes, as a station's "
        "limits.max_bytes); if the station that recorded it allows more, give its "
        "limits.max_bytes as --max-bytes"
    )
