"""What a station takes images from and writes results to: sources, what a source is given
(:class:`SourceContext`), the items they deliver, and sinks.

A source plugin derives from :class:`BaseSource` and writes ``items()``; everything else has a
default. The station calls every method of :class:`Source` on every source, so a source that
files its images (as the built-in folder source does) overrides ``done`` and ``destination``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from inspect_core.types import Inspection


@dataclass
class FileFacts:
    """What is known of a file on its way through a station, for sources that file their
    images (``destination`` and ``done``). A file source sets ``size`` and ``mtime_ns`` when it
    takes the file; the other fields are filled in on the way, as each says."""

    size: int  # the file as the source saw it: the station reads it only if it still matches
    mtime_ns: int
    ino: int | None = None  # set by the station when it reads the file: the inode read
    # set by the station: the file was recorded before (a crash between the journal and the
    # move), and its record says it is filed here
    known_dest: str | None = None
    dest: str | None = None  # set by ``destination``: where ``done`` is to file it
    filed_as: str | None = None  # set by ``done``: where it went (logged)
    # set by the station for a source that leaves files in place: the journal commit already
    # remembered it as seen, so ``done`` need not
    seen_recorded: bool = False


@dataclass
class SourceItem:
    """One image delivered by a source: a file (``path``) or a decoded frame (``frame``).

    A source sets ``source`` and one of ``path`` / ``frame``; everything else is optional.
    ``request_id``, ``part_id`` and ``lot`` come with a trigger (e.g. an MQTT message) and go
    into the record; a triggered frame is a record of its own (its key is the trigger id, the
    capture time and ``frame_no``), a file's key is its content."""

    source: str  # what logs show: a path, or a camera URL (without password) + frame number
    path: str | None = None
    frame: np.ndarray | None = None  # RGB or grey, uint8
    captured_at: float | None = None  # unix seconds
    part_id: str | None = None
    lot: str | None = None
    request_id: str | None = None  # e.g. the MQTT trigger id, echoed with the result
    frame_no: int = 0  # a camera's frame counter: in the capture key and the archive name
    # never read it: record an ERROR with this reason and file it as it is (a pipe in the
    # inbox, a symlink out of it, a trigger that got no frame)
    refuse: str | None = None
    file: FileFacts | None = None  # for a file: its stat, and what the station learns of it


class SourceContext(Protocol):
    """What a station gives a source factory besides its ``[source]`` table (the one contract:
    the station's own context, :class:`inspect_stations.builders.SourceContext`, implements it
    and carries more for the built-in sources)."""

    station: str  # the station's name
    stop: threading.Event  # set on SIGTERM/SIGINT: finish and return from items()
    base: Path  # the station file's folder: resolve relative paths against it
    until_empty: bool  # True for a one-shot run: end items() when nothing is left


class Source(Protocol):
    """What a station calls on its source (:class:`BaseSource` gives the defaults)."""

    queue_depth: int  # images waiting (shown by ``inspect station status``)

    def items(self) -> Iterator[SourceItem]:
        """The images, as they come; return when the station's ``stop`` event is set (or,
        with ``until_empty``, when nothing is left)."""
        ...

    def destination(self, item: SourceItem, inspection: Inspection) -> str | None:
        """Where ``done`` will put the image, recorded as its source; None: where it is."""
        ...

    def done(self, item: SourceItem, inspection: Inspection) -> None:
        """The result is durably recorded: file the image. Raising leaves it in place (logged);
        it is filed, not inspected again, when it comes again."""
        ...

    def release(self, item: SourceItem) -> None:
        """The station let the item go without a result (e.g. a file still being written):
        deliver it again later."""
        ...

    def close(self) -> None: ...


class BaseSource(ABC):
    """Defaults for a :class:`Source`: write ``items()``; override the rest as needed."""

    queue_depth: int = 0

    @abstractmethod
    def items(self) -> Iterator[SourceItem]:
        """The images, one :class:`SourceItem` each, as they arrive (every source defines it)."""

    def destination(self, item: SourceItem, inspection: Inspection) -> str | None:
        return None

    def done(self, item: SourceItem, inspection: Inspection) -> None:
        return None  # the default: nothing to do

    def release(self, item: SourceItem) -> None:
        return None  # the default: nothing to do

    def close(self) -> None:
        return None  # the default: nothing to do


class Sink(Protocol):
    """Where results go: ``write`` is idempotent on the record's key (station and image
    sha256, or station and ``capture_id``); raising retries it later (see ``register_sinks``).
    An ERROR is not a verdict: a file's later verdict takes the place of its ERROR record (of
    the same key, or of the key ``inspection.replaces`` names), as the ``sql`` sink does."""

    def write(self, inspection: Inspection) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ModelVersion:
    """A version of a recipe's model that a registry names active: its file (the card beside it,
    or ``card``), its sha256 (every record made with it carries it) and a label people know it
    by."""

    sha256: str
    path: str
    label: str = ""
    card: str | None = None


class VersionSource(Protocol):
    """Which model version a station should run (see ``register_version_sources``):
    ``active`` answers for a plugin, recipe and station; None means the recipe's own model
    file. It may raise (a database away): the station keeps the model it runs and asks again
    later."""

    def active(self, plugin: str, recipe: str, station: str) -> ModelVersion | None: ...

    def close(self) -> None: ...
