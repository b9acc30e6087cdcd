"""Locks that keep two stations from working on one folder at once.

``take_lock``: the state folder (its journal and status) belongs to one station process.

``take_inbox_lock``: so does an inbox. Two stations taking files from one inbox (a container
still running while someone starts ``inspect station run --watch`` by hand, with a state folder
of its own) would each record every image, under two station names. Two locks keep the second
one out, and it is refused with the process that holds them when this machine can tell
(``/proc/locks``):

- the inbox folder itself (``flock`` on the folder: nothing is written into it, so the inbox
  holds only what the writers put there, and a read-only share is locked as well; this one
  reaches stations in other containers sharing the folder);
- a lock file keyed by the inbox's resolved path, outside the inbox (``INSPECT_LOCK_DIR``, else
  ``/run/lock/inspect``, else ``<tmp>/inspect-locks``): it stays held when the inbox is removed
  and made again (``rm -rf inbox; mkdir inbox``) while the station runs, a new folder the folder
  lock would not cover, and it covers a file system that cannot lock folders.

The station checks before each pass over the inbox that the folder at its path is still the one
it locked (:meth:`InboxLock.follow`): a new one is locked in turn and taken from (logged as
``inbox_replaced``); a new one that another station holds already stops this station, so that
no image is recorded twice. Both locks are released by the kernel when the process ends, however
it ends. Stations on two machines sharing an inbox over the network are not caught.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inspect_core.errors import InspectError
from inspect_stations.logs import StationLog

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
LOCK_DIR_ENV = "INSPECT_LOCK_DIR"


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


@dataclass
class InboxLock:
    """The two locks of one station's inbox (see the module docstring); :meth:`close` lets go."""

    path: Path
    station: str
    folder_fd: int | None  # flock on the folder; None: missing, or its file system cannot lock
    path_fd: int | None  # flock on the lock file keyed by the path; None: no lock folder usable
    path_file: Path | None  # that lock file
    identity: tuple[int, int] | None  # (device, inode) of the folder locked; None: missing

    def follow(self, log: StationLog) -> bool:
        """True when the folder at the inbox's path is a new one (removed and made again), now
        locked by this station (logged as ``inbox_replaced``); False when it is the same (or
        missing: the source says so). :class:`InspectError` when another station holds the
        new folder."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) == self.identity:
            return False
        fd, identity = _lock_folder(self.path, self.station, replaced=self.identity is not None)
        if identity is None or identity != (st.st_dev, st.st_ino):  # gone, or replaced again
            if fd is not None:
                os.close(fd)
            return False
        old, self.folder_fd, self.identity = self.folder_fd, fd, identity
        if old is not None:
            os.close(old)
        log.warning(
            "inbox_replaced",
            f"the inbox {self.path} was replaced by a new folder while station {self.station} "
            "ran (removed and made again?); files of the old folder that were not filed yet "
            "went with it (their results are recorded). Taking files from the new folder, which "
            "this station now holds: a second station on this inbox is still refused",
            path=str(self.path),
        )
        return True

    def close(self) -> None:
        """Release both locks (the lock file is removed while still held)."""
        if self.folder_fd is not None:
            os.close(self.folder_fd)
            self.folder_fd = None
        if self.path_fd is not None:
            if self.path_file is not None and _same_file(self.path_fd, self.path_file):
                try:
                    os.unlink(self.path_file)
                except OSError:
                    pass  # another user's lock folder: the file stays, harmless
            os.close(self.path_fd)
            self.path_fd = None


def take_inbox_lock(inbox: Path, station: str) -> InboxLock:
    """Both locks of the inbox (see the module docstring); what cannot be locked is not (a
    missing folder is locked once it appears, by :meth:`InboxLock.follow`).
    :class:`InspectError` naming the other station's process when one holds either."""
    inbox = Path(inbox)
    lock = InboxLock(inbox, station, None, *_lock_path(inbox, station), None)
    try:
        lock.folder_fd, lock.identity = _lock_folder(inbox, station)
    except BaseException:
        lock.close()
        raise
    return lock


def _refused(inbox: Path, station: str, holder: str | None, replaced: bool = False) -> InspectError:
    who = f"another station ({holder})" if holder else "another station"
    if replaced:
        return InspectError(
            f"the inbox {inbox} was replaced by a new folder while station {station} ran "
            f"(removed and made again?), and {who} took the new folder first; station "
            f"{station} stops so that no image is recorded twice. Keep one station on this "
            "inbox (source.path), then start this one again if it is the one to keep"
        )
    return InspectError(
        f"{who} is already taking files from the inbox {inbox}; two stations on one "
        f"inbox would each record every image. Stop it, or give station {station} an "
        "inbox of its own (source.path)"
    )


def _lock_folder(
    inbox: Path, station: str, replaced: bool = False
) -> tuple[int | None, tuple[int, int] | None]:
    """(flock'd descriptor or None where the file system cannot lock, the folder's (device,
    inode)); (None, None) when it is missing. :class:`InspectError` when another holds it."""
    try:
        fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError:
        return None, None  # missing: the source says so
    st = os.fstat(fd)
    if not _flock_or_refuse(fd, inbox, station, replaced):
        return None, (st.st_dev, st.st_ino)  # this file system does not lock folders
    return fd, (st.st_dev, st.st_ino)


def _flock_or_refuse(fd: int, inbox: Path, station: str, replaced: bool = False) -> bool:
    """Take ``fd``'s exclusive lock: True when taken, False (``fd`` closed) where the file
    system cannot lock; :class:`InspectError` (``fd`` closed) when another station holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _holder(fd) if e.errno in _BUSY else None
        os.close(fd)
        if e.errno not in _BUSY:
            return False
        raise _refused(inbox, station, holder, replaced) from None
    return True


def lock_dir() -> Path:
    """Where the inbox path locks are: ``INSPECT_LOCK_DIR``, else ``/run/lock/inspect`` where
    ``/run/lock`` exists, else ``inspect-locks`` in the temporary folder."""
    env = os.environ.get(LOCK_DIR_ENV, "").strip()
    if env:
        return Path(env)
    if os.path.isdir("/run/lock"):
        return Path("/run/lock/inspect")
    return Path(tempfile.gettempdir()) / "inspect-locks"


def _lock_path(inbox: Path, station: str) -> tuple[int | None, Path | None]:
    """The flock'd lock file keyed by the inbox's resolved path, or (None, None) where the lock
    folder cannot be used. :class:`InspectError` when another station holds it."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(inbox))).hexdigest()[:32]
    folder = lock_dir()
    try:  # shared by every user's stations, like /tmp (each removes only its own files)
        folder.mkdir(mode=0o1777, exist_ok=True)
        if folder.stat().st_uid == os.geteuid():
            os.chmod(folder, 0o1777)
    except OSError:
        return None, None
    name = folder / f"inbox-{key}.lock"
    for _ in range(5):  # the holder removes the file when it stops: then open the new one
        try:
            fd = _open_lock_file(name)
        except FileExistsError:
            continue
        except OSError:
            return None, None
        if not _flock_or_refuse(fd, inbox, station):
            return None, None
        if _same_file(fd, name):
            return fd, name
        os.close(fd)  # removed by its holder between our open and our lock: again
    return None, None


def _open_lock_file(name: Path) -> int:
    """Open (read-only is enough to flock) or create the lock file, never through a link;
    FileExistsError when another process created it between the two tries."""
    flags = os.O_RDONLY | _CLOEXEC | _NOFOLLOW
    try:
        return os.open(name, flags)
    except FileNotFoundError:
        return os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o644)


def _same_file(fd: int, name: Path) -> bool:
    """Whether ``name`` still names the file open as ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(name, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


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
