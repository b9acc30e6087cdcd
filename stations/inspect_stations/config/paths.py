"""Folders a station must not be given: system folders, and an inbox that is clearly not one.

A station moves every file out of its inbox (into the archive, or quarantine when it is not an
image) and writes into its archive, quarantine and state folders, so a slip in the TOML
(``path = "/etc"``) would empty a system folder. Both ``station check`` and ``station run``
refuse, comparing resolved paths (symlinks followed, so ``/bin`` is caught as ``/usr/bin``):

* the filesystem root and the operating system's trees, with everything inside them:
  ``SYSTEM_TREES`` (``/etc``, ``/usr``, ``/bin``, ``/lib*``, ``/boot``, ``/dev``, ``/proc``,
  ``/var/spool`` with its cron tables and mail...);
* a user's keys, credentials and settings, with everything inside them: ``USER_TREES`` in any
  home folder (``~/.ssh``, ``~/.gnupg``, ``~/.config``, ``~/.aws``, ``~/.kube``...), and every
  other hidden folder directly in a home folder (``~/.cache``; ``~/.local/share/x`` is fine).
  Home folders are ``$HOME``, ``/root`` and those of the system's users (``/etc/passwd``);
* folders that hold other folders, themselves but not what is inside them: ``SYSTEM_FOLDERS``
  (``/var``, ``/var/lib``, ``/tmp``, ``/home``, ``/srv``, ``/mnt``...) and the user's home
  folder (``/var/lib/inspect/inbox`` or ``~/line1/inbox`` are fine);
* an inbox that already holds at least ``FOREIGN_MIN`` files that are not images by their
  extension (``limits.extensions``) and more of them than images: no camera or PLC wrote that,
  it is somebody's folder. A few stray files in a real inbox go to quarantine as usual.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from inspect_stations.inputs.regular_files import ignored

SYSTEM_TREES = (
    "/etc",
    "/bin",
    "/sbin",
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/var/spool",
)
ALLOWED_IN_TREES = ("/dev/shm",)  # a RAM disk: its sub-folders are fine
SYSTEM_FOLDERS = (
    "/",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/tmp",
    "/var/mail",
    "/var/backups",
    "/var/opt",
    "/var/local",
    "/var/www",
    "/run",
    "/tmp",
    "/home",
    "/root",
    "/opt",
    "/srv",
    "/mnt",
    "/media",
    "/snap",
    "/dev/shm",
)
# in a home folder: keys, credentials, settings (and the programs they start)
USER_TREES = (
    ".ssh",
    ".gnupg",
    ".config",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".password-store",
    ".pki",
)
FOREIGN_MIN = 10  # non-image files an inbox may already hold before it is refused
SCAN_MAX = 2000  # entries of the inbox looked at (a huge folder is not listed in full)


def _real(p: str | Path) -> str:
    return os.path.realpath(os.path.expanduser(str(p)))


def _homes() -> set[str]:
    """``$HOME``, ``/root`` and the home folders of the system's users (not ``/``)."""
    out = set()
    for h in (os.environ.get("HOME"), os.path.expanduser("~"), "/root", *_user_homes()):
        if h and h != "/" and os.path.isabs(h):
            out.add(_real(h))
    out.discard("/")
    return out


@functools.lru_cache(maxsize=1)
def _user_homes() -> tuple[str, ...]:
    try:
        import pwd  # lazy: POSIX only, and inside the try that falls back without it

        return tuple({u.pw_dir for u in pwd.getpwall()})
    except (ImportError, OSError, KeyError):
        return ()


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def system_folder(path: str | Path) -> str | None:
    """Why ``path`` is a folder a station must not use, or None when it is fine."""
    real = _real(path)
    shown = f"{path}" + (f" (which is {real})" if real != str(path) else "")
    for tree in SYSTEM_TREES:
        t = _real(tree)
        if _inside(real, t) and not any(
            _inside(real, _real(a)) and real != _real(a) for a in ALLOWED_IN_TREES
        ):
            where = "is" if real == t else "is inside"
            return f"{shown} {where} {tree}, which belongs to the operating system"
    why = _user_folder(real, shown)
    if why:
        return why
    for folder in SYSTEM_FOLDERS:
        if real == _real(folder):
            return (
                f"{shown} is {folder} itself, a system folder shared with other programs "
                "(a folder inside it is fine)"
            )
    return None


def _user_folder(real: str, shown: str) -> str | None:
    """Why ``real`` is a home folder, its keys or settings, or a hidden folder in it."""
    homes = _homes()
    if real in homes:
        return (
            f"{shown} is a home folder itself (a folder inside it is fine, e.g. "
            f"{os.path.join(real, 'line1', 'inbox')})"
        )
    for home in homes:
        for name in USER_TREES:
            tree = _real(os.path.join(home, name))
            if _inside(real, tree):
                where = "is" if real == tree else "is inside"
                return f"{shown} {where} {tree}, which holds a user's keys, credentials or settings"
    parent, name = os.path.split(real)
    if name.startswith(".") and parent in homes:
        return (
            f"{shown} is a hidden folder of the home folder {parent} (a program's settings or data)"
        )
    return None


def check_folders(folders: Iterable[tuple[str, Path]], err: Callable[[str, str], None]) -> None:
    """One problem per station folder (key, path) that is a system folder."""
    for key, p in folders:
        if p is None:
            continue
        why = system_folder(p)
        if why:
            err(
                key,
                f"{why}: the station moves files out of its inbox and writes into its "
                "archive, quarantine and state folders; give it a folder of its own "
                "(e.g. /srv/inspect/line1/inbox)",
            )


def count_files(inbox: Path, extensions: Iterable[str]) -> tuple[int, list[str]]:
    """(images, names of the other files) among the first ``SCAN_MAX`` entries of ``inbox``;
    names the folder source never takes (hidden, ``.tmp``...) and sub-folders are skipped."""

    exts = {e.lower() for e in extensions}
    images, foreign = 0, []
    try:
        with os.scandir(inbox) as it:
            for n, entry in enumerate(it):
                if n >= SCAN_MAX:
                    break
                if ignored(entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                if os.path.splitext(entry.name)[1].lower() in exts:
                    images += 1
                else:
                    foreign.append(entry.name)
    except OSError:
        return 0, []  # missing or unreadable: `station check` says so separately
    return images, foreign


def check_inbox_contents(
    inbox: Path, extensions: Iterable[str], moved: bool, err: Callable[[str, str], None]
) -> None:
    """Refuse an inbox that already holds a folder's worth of files no camera wrote."""
    if system_folder(inbox):
        return  # refused already, and not worth listing
    images, foreign = count_files(inbox, extensions)
    if len(foreign) < FOREIGN_MIN or len(foreign) <= images:
        return
    shown = ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
    fate = (
        "move every one of them into quarantine"
        if moved
        else "record every one of them as an ERROR"
    )
    err(
        "source.path",
        f"folder {inbox} already holds {len(foreign)} files that are not images "
        f"({shown}) and {images} image(s): it does not look like an inbox, and "
        f"the station would {fate}. Check source.path; if it is right, move those "
        "files elsewhere (or add their extension to limits.extensions)",
    )
