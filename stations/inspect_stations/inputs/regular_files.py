"""Regular files only: what a path in the inbox is (a symlink's target too), opening it,
comparing two of them.

A named pipe, socket or device in the inbox is never opened for reading (a read can wait
forever): :func:`open_regular` checks on the opened descriptor, so a pipe that took a name
after a check cannot make it wait either. The station quarantines such a file as it is, with
:func:`special_reason` as the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

# names an inbox never takes: hidden files and the suffixes of files still being written
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", "~", ".why.txt")


def ignored(name: str) -> bool:
    """A file name a station leaves alone (hidden, or a writer's temporary name)."""
    return name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES)


class NotRegularFile(OSError):
    """A path that is a pipe, socket, device or folder where an image file was expected."""

    def __init__(self, kind: str, path: str | os.PathLike[str]):
        super().__init__(errno.EINVAL, f"{kind}, not a file", str(path))
        self.kind = kind


def special_kind(mode: int) -> str | None:
    """What a file is when it is not a regular file (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a Unix socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def special_reason(kind: str) -> str:
    """Why a pipe, socket or device in the inbox is quarantined without being read."""
    return (
        f"{kind}, not an image file: the station reads only regular files (reading a "
        "pipe, socket or device can wait forever); make the writer save each image as a "
        "file (written under a temporary name, then renamed into the inbox)"
    )


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading; :class:`NotRegularFile` for anything else. Opened
    without blocking and checked on the open descriptor, so a pipe that took the name after
    a check cannot make the read wait forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = special_kind(os.fstat(fd).st_mode)
        if kind:
            raise NotRegularFile(kind, path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def same_content(a: Path, b: Path) -> bool:
    """Whether two regular files hold the same bytes (never reads a pipe or device)."""
    try:
        sa, sb = os.stat(a), os.stat(b)
        if special_kind(sa.st_mode) or special_kind(sb.st_mode) or sa.st_size != sb.st_size:
            return False
        with open_regular(a) as fa, open_regular(b) as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def lexists(p: Path) -> bool:
    """Whether a name is taken (by a dangling symlink too); unlike ``os.path.lexists``,
    errors other than "not found" are raised."""
    try:
        os.lstat(p)
    except FileNotFoundError:
        return False
    return True


def link_refusal(path: str, root: str) -> str | None:
    """Why the symlink ``path`` in the inbox ``root`` (its real path) is never read, or None:
    broken, leading out of the folder, to a folder, or to a pipe, socket or device."""
    target = os.path.realpath(path)
    if not os.path.exists(target):
        return (
            f"broken symlink: it points to '{shown_name(os.readlink(path))}', which does not exist"
        )
    if os.path.commonpath([root, target]) != root:
        return (
            f"symlink pointing outside the watched folder (to {target}); put the image "
            "itself in the inbox"
        )
    if os.path.isdir(target):
        return "symlink to a folder; only image files are taken"
    try:
        kind = special_kind(os.stat(target).st_mode)
    except OSError:
        return None  # gone meanwhile: reading it says so
    return f"symlink to {special_reason(kind)}" if kind else None


def shown_name(name: str) -> str:
    """A name as text: bytes that are not UTF-8 (a Latin-1 ``\xfc``) as ``\xfc``."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
