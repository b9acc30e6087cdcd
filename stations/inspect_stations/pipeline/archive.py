"""Filing images: ``archive/<verdict>/<date>/`` and ``quarantine/<date>/`` (with a reason file).

A file is put in place with a hard link and then removed from the inbox (a rename where the file
system has no hard links); across file systems (separate Docker volumes) it is copied to a
temporary name, fsync'd, linked into place, and only then removed from the inbox. So a crash at
any point leaves the image in at least one place, and a file already in the archive is never
replaced, even by another station filing into the same folder at the same moment. A name
already taken in the target folder gets the image's sha256 prefix appended (then a counter); an
identical file already there (a move interrupted by a crash, then retried; or the same image
delivered twice under one name) is not stored twice. A failed copy (disk full) leaves no
temporary file behind.

Names fit the file system's 255-byte limit: a name too long to take a ``.why.txt`` or a
sha256 suffix beside it is shortened deterministically (a readable prefix, ``~`` and a hash of
the whole name, the extension; see :func:`inspect_core.runtime.overlay.fit_name`).

Only regular files are ever opened (:mod:`inspect_stations.inputs.regular_files`): a named pipe,
socket or device in the inbox is quarantined as it is (linked, never read; a pipe is re-made on
another file system), so no read can wait forever.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from inspect_core.runtime.overlay import fit_name
from inspect_stations.inputs.regular_files import lexists, same_content, special_kind

TMP_PREFIX = ".inspect-tmp-"
WHY = ".why.txt"  # beside a quarantined file: why it was quarantined
SUFFIX_ROOM = 21  # "-<sha256 prefix>-<counter>" added to a name that is taken


def day(ts: float | None = None) -> str:
    """The dated folder of a time (local time): ``2024-05-02``."""
    return time.strftime("%Y-%m-%d", time.localtime(ts if ts is not None else time.time()))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _candidates(folder: Path, name: str, sha256: str) -> Iterator[Path]:
    """The names an image may get in ``folder``, in order: its own, then with the sha256 prefix
    of its content, then with a counter as well; each short enough to take a ``.why.txt``."""
    yield folder / fit_name(name, reserve=len(WHY))
    stem, suffix = os.path.splitext(fit_name(name, reserve=len(WHY) + SUFFIX_ROOM))
    yield folder / f"{stem}-{sha256[:12]}{suffix}"
    k = 2
    while True:
        yield folder / f"{stem}-{sha256[:12]}-{k}{suffix}"
        k += 1


def _suffix_key(sha256: str) -> str:
    """What a taken name is told apart by: the image's sha256, else the time in microseconds."""
    return sha256 or str(int(time.time() * 1e6))


def _target(folder: Path, name: str, sha256: str) -> Path:
    """The first free name for ``name`` in ``folder``."""
    return next(p for p in _candidates(folder, name, sha256) if not lexists(p))


def fs_hint(e: BaseException) -> str:
    """What the person at the line should do about a failed write into a folder."""
    code = getattr(e, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full: free space on it (or point archive.path elsewhere)"
    if code in (errno.EACCES, errno.EPERM):
        who = f"uid {os.getuid()}" if hasattr(os, "getuid") else "the station's user"
        return (
            f"permission denied: the station runs as {who} and must be able to write "
            "there; fix the folder's owner or mode (in Docker: --user, or chown the volume)"
        )
    if code in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way: that path (or a part of it) must be a folder"
    if code == errno.EROFS:
        return "the file system is mounted read-only: remount it read-write"
    if code == errno.ENAMETOOLONG:
        return (
            "a name is too long for that file system (file names are shortened to 255 "
            "bytes, so the folder path is too long): use shorter archive.path and "
            "archive.quarantine folders"
        )
    if code == errno.EXDEV:
        return (
            "it cannot be copied to another file system (a socket or device file, not an "
            "image): remove it from the inbox by hand"
        )
    if code in (errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.EHOSTDOWN, errno.ENOTCONN):
        return "the disk or network share does not answer: check it"
    return "check that the archive and quarantine folders exist and are writable"


def _tmp_name(name: str) -> str:
    return fit_name(f"{TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{name}")


def _remake_special(src: Path, tmp: Path) -> bool:
    """On another file system, a named pipe is made anew (it holds no data); a socket or device
    cannot be: OSError(EXDEV). False for a regular file (to be copied)."""
    st = os.stat(src)
    kind = special_kind(st.st_mode)
    if kind is None:
        return False
    if stat.S_ISFIFO(st.st_mode):
        os.mkfifo(tmp, stat.S_IMODE(st.st_mode))
        return True
    raise OSError(errno.EXDEV, f"{kind} cannot be moved to another file system", str(src))


def _remove_quietly(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _link_no_replace(src: Path, dest: Path, sha256: str, name: str) -> tuple[Path, bool]:
    """Put ``src`` at ``dest``, else at the next free name for ``name`` beside it, without
    replacing anything there; a name already holding the same content is used as it is.
    Returns (where it is, whether ``src`` is gone already): ``src`` stays unless the file
    system has no hard links (then it is renamed). Raises OSError(EXDEV) across file systems."""
    key = _suffix_key(sha256)
    names = _candidates(dest.parent, name, key)
    while True:
        try:
            os.link(src, dest, follow_symlinks=False)
            return dest, False
        except FileExistsError:
            if os.path.islink(src) == os.path.islink(dest) and same_content(src, dest):
                return dest, False  # already there
            dest = next(p for p in names if p != dest)
        except OSError as e:
            if e.errno not in (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
                errno.EMLINK,
                errno.ENOSYS,
            ):
                raise
            # no hard links here (some network shares, FAT): a rename; the name was checked free
            if lexists(dest):
                dest = _target(dest.parent, name, key)
            os.rename(src, dest)
            return dest, True


def _unlink_if_same(src: Path, dest: Path) -> None:
    """Remove ``src`` now that ``dest`` holds it, unless ``src`` has meanwhile been replaced by
    a new file (a writer that reuses one name): that one has not been inspected yet."""
    try:
        a, b = os.lstat(src), os.lstat(dest)
    except FileNotFoundError:
        return
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) or same_content(src, dest):
        src.unlink()


def _identity(p: Path) -> tuple[int, int, int, int]:
    st = os.lstat(p)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _unlink_if_unchanged(src: Path, before: tuple[int, int, int, int]) -> None:
    """Remove ``src`` after copying it, unless a new file took its name during the copy."""
    try:
        if _identity(src) != before:
            return
    except FileNotFoundError:
        return
    src.unlink()


class Archive:
    """Where a station files what it has inspected.

    :meth:`plan` picks the destination *before* the result is recorded (so the record names
    the image's permanent place); :meth:`move` puts the file there afterwards.
    """

    def __init__(self, root: Path, quarantine: Path):
        self.root = Path(root)
        self.quarantine_root = Path(quarantine)
        self._made: set[Path] = set()  # folders known to exist (saves a mkdir per image)

    def _mkdir(self, folder: Path) -> None:
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)

    def _again_if_folder_gone(self, folder: Path, fn: Callable[[], Path]) -> Path:
        """``fn()``; if it fails because ``folder`` has gone (an archive clean-up job, a folder
        moved away by hand), make it again and retry once instead of failing until a restart."""
        try:
            return fn()
        except FileNotFoundError:
            if folder.is_dir():
                raise
            self._made.discard(folder)
            self._mkdir(folder)
            return fn()

    def folder(self, verdict: str, ts: float | None = None) -> Path:
        if verdict == "ERROR":
            return self.quarantine_root / day(ts)
        return self.root / verdict / day(ts)

    def plan(self, src: Path, verdict: str, sha256: str, ts: float | None = None) -> Path:
        """Where ``src`` will go: ``archive/<verdict>/<date>/<name>`` (``quarantine/<date>/``
        for ERROR), with the sha256 prefix added when the name is taken by another image."""
        folder = self.folder(verdict, ts)
        link = os.path.islink(src)
        for dest in _candidates(folder, src.name, _suffix_key(sha256)):
            if not lexists(dest) or not link and same_content(src, dest):
                return dest
        raise AssertionError("unreachable")

    def move(self, src: Path, dest: Path, sha256: str = "", materialize: bool = True) -> Path:
        """Move ``src`` to ``dest`` (planned earlier); returns where it now is. A symlink is
        replaced by a copy of its target when ``materialize`` (never for refused files).
        Nothing already in the archive is ever replaced (see the module's docstring)."""
        src, dest = Path(src), Path(dest)
        if src.name == dest.name and os.path.realpath(src.parent) == os.path.realpath(dest.parent):
            # moving a file onto itself would remove the only copy
            raise OSError(errno.EINVAL, "the destination is the file itself", str(dest))
        self._mkdir(dest.parent)
        if not os.path.lexists(src):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(src))
        return self._again_if_folder_gone(
            dest.parent, lambda: self._move(src, dest, sha256, materialize)
        )

    def _move(self, src: Path, dest: Path, sha256: str, materialize: bool) -> Path:
        link = os.path.islink(src)
        if link and materialize and os.path.isfile(src):
            # a link inside the inbox: archive the image itself, not a link that may dangle
            before = _identity(src)
            dest = self._copy_in(src, dest, sha256, name=src.name)
            _unlink_if_unchanged(src, before)
            return dest
        try:
            dest, gone = _link_no_replace(src, dest, sha256, src.name)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            # another file system: copy, fsync, link into place, then remove the original
            before = _identity(src)
            dest = self._copy_in(src, dest, sha256, symlink=link, name=src.name)
            _fsync_dir(dest.parent)  # the copy is durable before the original goes
            _unlink_if_unchanged(src, before)
            return dest
        if not gone:
            # no fsync needed: until the unlink is durable the file is in the inbox as well, and
            # a restart files it again without a second record
            _unlink_if_same(src, dest)
        return dest

    def _copy_in(
        self, src: Path, dest: Path, sha256: str, symlink: bool = False, name: str = ""
    ) -> Path:
        """Copy ``src`` (its target, or the link itself when ``symlink``) to a temporary name
        beside ``dest``, fsync it and link it into place; a failure leaves nothing behind."""
        tmp = dest.parent / _tmp_name(dest.name)
        try:
            if symlink:
                os.symlink(os.readlink(src), tmp)
            elif not _remake_special(src, tmp):
                shutil.copyfile(src, tmp)
                try:
                    shutil.copystat(src, tmp)
                except OSError:
                    pass  # times and mode are nice to have (some shares refuse them)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            return _link_no_replace(tmp, dest, sha256, name or dest.name)[0]
        finally:
            _remove_quietly(tmp)

    def file(
        self,
        src: Path,
        verdict: str,
        sha256: str = "",
        ts: float | None = None,
        reason: str | None = None,
        dest: Path | None = None,
    ) -> Path:
        """Plan (unless ``dest``) and move; an ERROR gets ``<name>.why.txt`` with ``reason``."""
        src = Path(src)
        dest = self.move(
            src, dest or self.plan(src, verdict, sha256, ts), sha256, materialize=verdict != "ERROR"
        )
        if verdict == "ERROR":
            try:
                text = (
                    f"{reason or 'could not be inspected'}\n\noriginally: {src}\n"
                    f"sha256: {sha256}\nquarantined: {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                )
                try:  # a name that is not UTF-8 as its bytes, as it was in the inbox
                    data = text.encode("utf-8", "surrogateescape")
                except UnicodeEncodeError:
                    data = text.encode("utf-8", "backslashreplace")
                dest.with_name(fit_name(dest.name, reserve=len(WHY)) + WHY).write_bytes(data)
            except OSError:
                pass
        return dest

    def save(
        self, data: bytes, name: str, verdict: str, sha256: str = "", ts: float | None = None
    ) -> Path:
        """Write captured bytes (a camera frame) into the archive atomically."""
        folder = self.folder(verdict, ts)
        self._mkdir(folder)
        return self._again_if_folder_gone(folder, lambda: self._save(data, name, folder, sha256))

    def _save(self, data: bytes, name: str, folder: Path, sha256: str) -> Path:
        dest = _target(folder, name, _suffix_key(sha256))
        tmp = folder / _tmp_name(dest.name)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            dest = _link_no_replace(tmp, dest, sha256, name)[0]
        finally:
            _remove_quietly(tmp)  # the link holds the data; a failed write leaves nothing
        _fsync_dir(folder)  # the record that names this file is committed right after
        return dest
