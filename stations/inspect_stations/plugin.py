"""The station layer as a plugin: commands, the folder and camera sources, the mqtt sink.

Registered through the same hooks as any third-party plugin (entry point ``station`` in the
``inspect.plugins`` group). Imports stay light: OpenCV capture and paho-mqtt load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspect_core.plugin_api.hookspecs import hookimpl

if TYPE_CHECKING:
    from inspect_core.plugin_api.interfaces import Sink, Source, SourceContext


@hookimpl
def register_commands(cli):
    from inspect_stations.commands import demo_cmd, station_group

    cli.add_command(station_group)
    cli.add_command(demo_cmd)


def _folder(config: dict[str, Any], context: SourceContext) -> Source:
    from inspect_stations.builders import source_options
    from inspect_stations.config.tables import folder_options
    from inspect_stations.sources.folder import FolderSource

    return FolderSource(source_options(config, context, folder_options), context)


def _camera(config: dict[str, Any], context: SourceContext) -> Source:
    from inspect_stations.builders import source_options
    from inspect_stations.config.tables import camera_options
    from inspect_stations.sources.camera import CameraSource

    return CameraSource(source_options(config, context, camera_options), context)


def _mqtt_sink(config: dict[str, Any]) -> Sink:
    from inspect_stations.mqtt.sink import MqttSink

    return MqttSink(config)


@hookimpl
def register_sources(register):
    register("folder", _folder)
    register("camera", _camera)


@hookimpl
def register_sinks(register):
    register("mqtt", _mqtt_sink)
