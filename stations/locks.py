"""Locks that keep two stations from working on one folder at once.

``take_lock``: the state folder (its journal and status) belongs to one station process.

``take_inbox_lock``: so does an inbox. Two stations taking files from one inbox (a container
still running while someone starts ``inspect station run --watch`` by hand, with a state folder
of its own) would each record every image, under two station names. The inbox folder itself is
locked (``flock`` on the folder: nothing is written into it, so the inbox holds only what the
writers put there, and a read-only share is locked as well); the second station is refused,
with the process that holds the lock when this machine can tell (``/proc/locks``). Both locks
are released by the kernel when the process ends, however it ends. A file system that cannot
lock (some network shares) is not locked: stations on two machines sharing an inbox over the
network are not caught.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from inspect_core.errors import InspectError

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def take_lock(state_dir: Path) -> int:
    """An exclusive lock on the state folder (released by the kernel when the process dies)."""
    path = Path(state_dir) / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise InspectError(
            f"another station (pid {other}) is already running with the state "
            f"folder {state_dir}; stop it, or give this station its "
            "own station.state_dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def take_inbox_lock(inbox: Path, station: str) -> int | None:
    """An exclusive lock on the inbox folder (see the module docstring): the descriptor to close
    when the station stops, None where it cannot be locked. :class:`InspectError` naming the
    other station's process when one holds it."""
    try:
        fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None  # missing: the source says so
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _holder(fd) if e.errno in _BUSY else None
        os.close(fd)
        if e.errno not in _BUSY:
            return None  # this file system does not lock folders
        who = f"another station ({holder})" if holder else "another station"
        raise InspectError(
            f"{who} is already taking files from the inbox {inbox}; two stations on one "
            f"inbox would each record every image. Stop it, or give station {station} an "
            "inbox of its own (source.path)"
        ) from None
    return fd


def _holder(fd: int) -> str | None:
    """``pid N: its command line`` of the process holding a flock on ``fd``'s file, from
    ``/proc/locks`` (Linux); None when it cannot be told."""
    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            pids = [
                p[4] for p in map(str.split, f) if len(p) > 5 and p[1] == "FLOCK" and p[5] == key
            ]
    except OSError:
        return None
    if not pids:
        return None
    try:
        with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
            cmd = f.read(400).replace(b"\0", b" ").decode("utf-8", "backslashreplace").strip()
    except OSError:
        cmd = ""
    return f"pid {pids[0]}: {cmd}" if cmd else f"pid {pids[0]}"
