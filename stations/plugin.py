"""The station layer as a plugin: commands, the folder and camera sources, the mqtt sink.

Registered through the same hooks as any third-party plugin (entry point ``station`` in the
``inspect.plugins`` group). Imports stay light: OpenCV capture and paho-mqtt load only when used.
"""

from __future__ import annotations

from inspect_core.plugin_api.hookspecs import hookimpl


@hookimpl
def register_commands(cli):
    from inspect_stations.commands import demo_cmd, station_group

    cli.add_command(station_group)
    cli.add_command(demo_cmd)


def _folder(config, context):
    from inspect_stations.folder import folder_factory

    return folder_factory(config, context)


def _camera(config, context):
    from inspect_stations.camera import camera_factory

    return camera_factory(config, context)


def _mqtt_sink(config):
    from inspect_stations.mqtt import MqttSink

    return MqttSink(config)


@hookimpl
def register_sources(register):
    register("folder", _folder)
    register("camera", _camera)


@hookimpl
def register_sinks(register):
    register("mqtt", _mqtt_sink)
