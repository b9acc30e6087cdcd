"""The ``mqtt`` sink (``[[sinks]] type = "mqtt"``): each result published and acknowledged.

Unlike the ``[mqtt]`` link of :mod:`inspect_stations.mqtt.link`, which queues results in memory
while the broker is away, this sink goes through the station's journal: ``write`` waits for the
broker's acknowledgement and raises when it does not come, so the result stays journaled and is
sent again later (nothing is lost while the broker is down).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from inspect_core.types import Inspection
from inspect_stations.config.mqtt import sink_options
from inspect_stations.logs import StationLog
from inspect_stations.mqtt.link import MqttLink
from inspect_stations.mqtt.trigger import encode, result_message


class MqttSink:
    """The ``mqtt`` sink: publishes each inspection's result message to ``topic``.

    Config keys: those of ``[mqtt]`` (host, port, qos, client_id, username, password_env, tls,
    ca_file, cert_file, key_file, tls_insecure; not the topics), plus ``topic`` (required) and
    ``timeout_s`` (5).
    """

    def __init__(self, config: dict[str, Any]):
        so = sink_options(dict(config, type="mqtt"), Path.cwd())
        self.topic, self.timeout_s, self.opt = so.topic, so.timeout_s, so.mqtt
        if not self.opt.client_id:  # two mqtt sinks of one station must not share an id
            self.opt.client_id = f"inspect-sink-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.link = MqttLink(self.opt, "sink", StationLog("mqtt-sink"))
        self.link.client.on_publish = None  # write() waits for each acknowledgement itself
        self.link.connect_now(self.timeout_s)

    def write(self, inspection: Inspection) -> None:
        o = self.opt
        if not self.link.connected:  # paho would keep it and send it twice (the journal retries)
            raise ConnectionError(
                self.link.last_error or f"MQTT broker {o.host}:{o.port} not connected"
            )
        info = self.link.client.publish(self.topic, encode(result_message(inspection)), qos=o.qos)
        if o.qos > 0:
            try:
                info.wait_for_publish(self.timeout_s)
                ok = info.is_published()
            except (RuntimeError, ValueError) as e:
                raise ConnectionError(f"MQTT broker {o.host}:{o.port}: {e}") from None
            if not ok:
                raise ConnectionError(
                    f"MQTT broker {o.host}:{o.port} did not acknowledge within {self.timeout_s} s"
                )

    def close(self) -> None:
        self.link.disconnect()
