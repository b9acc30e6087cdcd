"""The station file's sections of the configuration reference
(:mod:`inspect_core.config.reference`)."""

from __future__ import annotations

from inspect_core.config.health import HealthOverride
from inspect_core.config.reference import Section
from inspect_stations.config.drift import DriftOptions
from inspect_stations.config.mqtt import MqttOptions, MqttSinkTable
from inspect_stations.config.types import (
    ArchiveSettings,
    CameraOptions,
    DatabaseSettings,
    FolderOptions,
    Limits,
    ModelOptions,
    OverridesSettings,
    StationSettings,
)

STATION = "Station file"
SECTIONS = [
    Section("[station]", StationSettings, STATION),
    Section('[source] type = "folder"', FolderOptions, STATION),
    Section('[source] type = "camera"', CameraOptions, STATION),
    Section("[overrides]", OverridesSettings, STATION),
    Section("[overrides.health]", HealthOverride, STATION),
    Section("[database]", DatabaseSettings, STATION),
    Section("[archive]", ArchiveSettings, STATION),
    Section("[limits]", Limits, STATION),
    Section("[model]", ModelOptions, STATION),
    Section("[drift]", DriftOptions, STATION),
    Section("[mqtt]", MqttOptions, STATION),
    Section('[[sinks]] type = "mqtt"', MqttSinkTable, STATION),
]
