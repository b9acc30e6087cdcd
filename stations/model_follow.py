"""Following the model registry: the station asks it every ``[model] check_s`` seconds which
version of its recipe's model is active, loads a new one beside the running one (the line
keeps running meanwhile) and hands it to the pipeline, which switches between two images: an
image is judged, post-processed and recorded entirely by the model that ran on it, and every
record carries that model's sha256. A version that fails to load (a missing file, a card that
does not vouch for it, other classes) is logged and the running model kept; a registry that does
not answer (the database away) keeps the running model too, and is asked again later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from inspect_core.cards import sha256_cached
from inspect_core.plugin_api.interfaces import ModelVersion, VersionSource
from inspect_core.runtime.inspector import InspectorBase
from inspect_stations.logs import StationLog
from inspect_stations.status import StatusBoard

RETRY_S = 60.0  # a version that would not load is tried again after this long

Build = Callable[[Any], InspectorBase]  # a recipe -> its inspector (with the station's overrides)


def recipe_for(base: Any, version: ModelVersion | None) -> Any:
    """``base`` (the recipe as the plugin ships it) running ``version``'s model file, checked
    against its card (required); ``base`` itself for None."""
    if version is None:
        return base
    model = Path(version.path)
    card = Path(version.card) if version.card else model.with_suffix(".json")
    return replace(base, model=model, card=card, card_required=True)


class ModelFollower:
    """Keeps the pipeline on the registry's active version (see the module docstring)."""

    def __init__(
        self,
        station: str,
        plugin: str,
        base_recipe: Any,
        versions: VersionSource,
        build: Build,
        running: InspectorBase,
        log: StationLog,
        status: StatusBoard,
    ):
        self.station, self.plugin, self.base = station, plugin, base_recipe
        self.versions, self.build, self.log, self.status = versions, build, log, status
        self.running_sha = running.model_sha256
        self.classes = list(running.classes)
        # versions that would not load -> when to try again (a share not mounted yet, a copy
        # still running); the error is said once per version, and again when it loads
        self.failed: dict[str, float] = {}
        self.retry_s = RETRY_S
        self.away = False  # the registry did not answer last time

    def wanted(self) -> ModelVersion | None | bool:
        """The active version (None: the recipe's own file), or False when the registry does
        not answer."""
        try:
            v = self.versions.active(self.plugin, self.base.name, self.station)
        except Exception as e:
            if not self.away:
                self.log.warning(
                    "model_registry_unavailable",
                    f"cannot ask the model registry which version of {self.base.name} is "
                    f"active ({type(e).__name__}: {e}); keeping the model that runs "
                    f"(sha256 {self.running_sha[:12]}) and asking again later",
                )
            self.away = True
            return False
        if self.away:
            self.log.info("model_registry_back", "the model registry answers again")
        self.away = False
        return v

    def load(self, v: ModelVersion | None) -> InspectorBase | None:
        """The inspector of ``v`` when it differs from the running model and loads; None
        otherwise (a failure is logged once per version and the running model kept)."""
        key = v.sha256 if v is not None else "recipe"
        if time.monotonic() < self.failed.get(key, 0.0):
            return None  # failed a moment ago: tried again after retry_s
        if (v.sha256 if v else self._recipe_sha()) == self.running_sha:
            return None  # nothing to switch to: not loaded again on every poll
        what = f"version {v.label or v.sha256[:12]} ({v.path})" if v else "the recipe's model"
        try:
            new = self.build(recipe_for(self.base, v))
            if list(new.classes) != self.classes:
                raise ValueError(
                    f"its classes {new.classes} are not those of the running model {self.classes}"
                )
        except Exception as e:
            if key not in self.failed:
                msg = (
                    f"cannot switch {self.base.name} to {what}: {type(e).__name__}: {e}; "
                    f"keeping the model that runs (sha256 {self.running_sha[:12]}) and trying "
                    f"again every {self.retry_s:g} s. Fix the file or promote another version"
                )
                self.log.error("model_switch_failed", msg)
                self.status.error(what, msg)
            self.failed[key] = time.monotonic() + self.retry_s
            return None
        if self.failed.pop(key, None) is not None:
            self.log.info("model_switch_loads", f"{self.base.name}: {what} loads now")
        if new.model_sha256 == self.running_sha:
            return None
        return new

    def _recipe_sha(self) -> str | None:
        """The sha256 of the recipe's own model file (hashed once per process), None when it
        cannot be read: then it is loaded, and the load says why."""
        try:
            return sha256_cached(self.base.model)
        except OSError:
            return None

    def check(self, switch: Callable[[InspectorBase], None]) -> bool:
        """Ask once; hand a newly loaded model to ``switch``. True when it switched."""
        v = self.wanted()
        if v is False:
            return False
        assert v is None or isinstance(v, ModelVersion)
        new = self.load(v)
        if new is None:
            return False
        old, self.running_sha = self.running_sha, new.model_sha256
        switch(new)
        self.log.info(
            "model_switched",
            f"{self.base.name}: switching from model {old[:12]} to "
            f"{(v.label + ' ') if v and v.label else ''}{new.model_sha256[:12]} between two "
            "images; every record says which model judged it",
            old_sha256=old,
            new_sha256=new.model_sha256,
            version=v.label if v else "recipe",
        )
        return True

    def run(self, stop: threading.Event, every_s: float, switch: Callable[[InspectorBase], None]):
        """Ask every ``every_s`` seconds until ``stop`` is set (the station's thread body)."""
        while not stop.wait(every_s):
            self.check(switch)


def open_follower(
    cfg: Any,
    registry: Any,
    base_recipe: Any,
    running: InspectorBase,
    build: Build,
    log: StationLog,
    status: StatusBoard,
    versions: VersionSource | None = None,
) -> ModelFollower | None:
    """The station's follower: of ``versions`` when given, else of the version source
    ``[model] follow`` names (``"sql"``: the records plugin's, on the station's database);
    None for ``follow = "none"``, or when the default ``"sql"`` is not installed."""
    from inspect_core.errors import InspectError

    if versions is None:
        name = cfg.model.follow
        if name == "none":
            return None
        factory = registry.version_sources.get(name)
        if factory is None:
            if name == "sql":  # the default, without the records plugin: nothing to follow
                return None
            known = ", ".join(sorted(registry.version_sources)) or "none installed"
            raise InspectError(
                f"model.follow = {name!r}: no such model registry (registered: {known}); "
                'set it to one of those, or to "none" to run the recipe\'s own model file'
            )
        versions = factory({"url": cfg.database_url} if cfg.database_url else {})
    return ModelFollower(cfg.name, cfg.plugin, base_recipe, versions, build, running, log, status)
