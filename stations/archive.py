"""Filing images: ``archive/<verdict>/<date>/`` and ``quarantine/<date>/`` (with a reason file).

Moves are atomic renames when source and archive share a file system; across file systems
(separate Docker volumes) the file is copied to a temporary name, fsync'd, renamed into place,
and only then removed from the inbox, so a crash at any point leaves the image in at least one
place. A name already taken in the target folder gets the image's sha256 prefix appended; an
identical file already there (a move interrupted by a crash, then retried) is not copied twice.
"""
from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

TMP_PREFIX = ".inspect-tmp-"


def day(ts: float | None = None) -> str:
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


def _same_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def _lexists(p: Path) -> bool:
    try:
        os.lstat(p)
    except FileNotFoundError:
        return False
    return True


def _target(folder: Path, name: str, sha256: str) -> Path:
    p = folder / name
    if not _lexists(p):
        return p
    stem, suffix = os.path.splitext(name)
    return folder / f"{stem}-{sha256[:12]}{suffix}"


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

    def folder(self, verdict: str, ts: float | None = None) -> Path:
        if verdict == "ERROR":
            return self.quarantine_root / day(ts)
        return self.root / verdict / day(ts)

    def plan(self, src: Path, verdict: str, sha256: str, ts: float | None = None) -> Path:
        """Where ``src`` will go: ``archive/<verdict>/<date>/<name>`` (``quarantine/<date>/``
        for ERROR), with the sha256 prefix added when the name is taken by another image."""
        folder = self.folder(verdict, ts)
        dest = folder / src.name
        if _lexists(dest) and not (not os.path.islink(src) and _same_content(src, dest)):
            dest = _target(folder, src.name, sha256 or str(int(time.time() * 1e6)))
        return dest

    def move(self, src: Path, dest: Path, sha256: str = "", materialize: bool = True) -> Path:
        """Move ``src`` to ``dest`` (planned earlier); returns where it now is. A symlink is
        replaced by a copy of its target when ``materialize`` (never for refused files)."""
        src, dest = Path(src), Path(dest)
        self._mkdir(dest.parent)
        link = os.path.islink(src)
        if _lexists(dest):
            if not link and _same_content(src, dest):
                src.unlink()  # a previous move copied it and was interrupted before the unlink
                return dest
            dest = _target(dest.parent, src.name, sha256 or str(int(time.time() * 1e6)))
        if link and materialize and os.path.isfile(src):
            # a link inside the inbox: archive the image itself, not a link that may dangle
            tmp = dest.parent / f"{TMP_PREFIX}{os.getpid()}-{dest.name}"
            shutil.copy2(src, tmp)
            os.rename(tmp, dest)
            src.unlink()
            return dest
        try:
            os.rename(src, dest)
            return dest
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
        # another file system: copy, fsync, rename into place, then remove the original
        tmp = dest.parent / f"{TMP_PREFIX}{os.getpid()}-{dest.name}"
        if link:
            os.symlink(os.readlink(src), tmp)
        else:
            shutil.copy2(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.rename(tmp, dest)
        _fsync_dir(dest.parent)
        src.unlink()
        return dest

    def file(self, src: Path, verdict: str, sha256: str = "", ts: float | None = None,
             reason: str | None = None, dest: Path | None = None) -> Path:
        """Plan (unless ``dest``) and move; an ERROR gets ``<name>.why.txt`` with ``reason``."""
        src = Path(src)
        dest = self.move(src, dest or self.plan(src, verdict, sha256, ts), sha256,
                         materialize=verdict != "ERROR")
        if verdict == "ERROR":
            try:
                dest.with_name(dest.name + ".why.txt").write_text(
                    f"{reason or 'could not be inspected'}\n\noriginally: {src}\n"
                    f"sha256: {sha256}\nquarantined: {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            except OSError:
                pass
        return dest

    def save(self, data: bytes, name: str, verdict: str, sha256: str = "",
             ts: float | None = None) -> Path:
        """Write captured bytes (a camera frame) into the archive atomically."""
        folder = self.folder(verdict, ts)
        self._mkdir(folder)
        dest = _target(folder, name, sha256 or str(int(time.time() * 1e6)))
        tmp = folder / f"{TMP_PREFIX}{os.getpid()}-{dest.name}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, dest)
        return dest
