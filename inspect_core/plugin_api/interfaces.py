"""Protocols for what plugins provide to stations: sources of images and sinks of results."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from inspect_core.types import Inspection


@dataclass
class SourceItem:
    """One image delivered by a source: a file path, or a decoded frame with its origin."""

    source: str  # a path or a camera URL + frame number
    path: str | None = None
    frame: np.ndarray | None = None
    captured_at: float | None = None
    part_id: str | None = None
    lot: str | None = None
    request_id: str | None = None  # e.g. the MQTT trigger id, echoed with the result
    extra: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    def items(self) -> Iterator[SourceItem]: ...

    def done(self, item: SourceItem, inspection: Inspection) -> None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, inspection: Inspection) -> None: ...

    def close(self) -> None: ...
