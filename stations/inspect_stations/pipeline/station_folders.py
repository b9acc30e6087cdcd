"""The folders a station needs before it starts: its state and inbox locks
(:mod:`inspect_stations.pipeline.locks`), and the state, archive and quarantine folders, made if
need be
and checked writable."""

from __future__ import annotations

import os
from pathlib import Path

from inspect_core.errors import InspectError
from inspect_stations.config.station import StationConfig
from inspect_stations.pipeline.archive import fs_hint
from inspect_stations.pipeline.locks import InboxLock, take_inbox_lock, take_lock


def take_locks(config: StationConfig, own_inbox: bool) -> tuple[int, InboxLock | None]:
    """The state folder's lock and, for a folder source the station builds, the inbox's
    (:mod:`inspect_stations.pipeline.locks`); nothing stays held when one of them is refused."""
    state = take_lock(config.state_dir)
    try:
        inbox = (
            take_inbox_lock(config.folder.path, config.name)
            if config.folder is not None and own_inbox
            else None
        )
    except BaseException:
        os.close(state)
        raise
    return state, inbox


def usable_folders(config: StationConfig) -> None:
    """The state, archive and quarantine folders exist (made if need be) and are writable."""
    for key, p in (
        ("station.state_dir", config.state_dir),
        ("archive.path", config.archive),
        ("archive.quarantine", config.quarantine),
    ):
        try:
            Path(p).mkdir(parents=True, exist_ok=True)
            if not os.access(p, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as e:
            raise InspectError(
                f"{key}: cannot use folder {p} ({e.strerror or e}): {fs_hint(e)}"
            ) from None
