"""The station layer as a plugin: commands, the folder and camera sources, the mqtt sink.

Registered through the same hooks as any third-party plugin (entry point ``station`` in the
``inspect.plugins`` group). Imports stay light: OpenCV capture and paho-mqtt load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from inspect_core.plugin_api.hookspecs import RegisterSink, RegisterSource, hookimpl

if TYPE_CHECKING:
    import click

    from inspect_core.plugin_api.interfaces import Sink, Source, SourceContext
    from inspect_stations.builders import SourceContext as StationContext


@hookimpl
def register_commands(cli: click.Group) -> None:
    from inspect_stations.commands import demo_cmd, station_group

    cli.add_command(station_group)
    cli.add_command(demo_cmd)


def _folder(config: dict[str, Any], context: SourceContext) -> Source:
    from inspect_stations.builders import source_options
    from inspect_stations.config.tables import folder_options
    from inspect_stations.sources.folder import FolderSource

    ctx = cast("StationContext", context)  # a station gives the built-in sources its own
    return FolderSource(source_options(config, ctx, folder_options), context)


def _camera(config: dict[str, Any], context: SourceContext) -> Source:
    from inspect_stations.builders import source_options
    from inspect_stations.config.tables import camera_options
    from inspect_stations.sources.camera import CameraSource

    ctx = cast("StationContext", context)  # as for _folder
    return CameraSource(source_options(config, ctx, camera_options), ctx)


def _mqtt_sink(config: dict[str, Any]) -> Sink:
    from inspect_stations.mqtt.sink import MqttSink

    return MqttSink(config)


@hookimpl
def register_sources(register: RegisterSource) -> None:
    register("folder", _folder)
    register("camera", _camera)


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    register("mqtt", _mqtt_sink)
