"""MQTT as a PLC uses it: a trigger topic in, a result topic out (paho-mqtt, imported lazily).

Trigger message (JSON; a bare JSON string or number is taken as the id)::

    {"id": "A-1042", "part_id": "P-77", "lot": "L-2024-05"}

Result message, on the result topic, with the trigger's id (folder stations publish one per
file, with the file name as id)::

    {"id": "A-1042", "station": "line1", "verdict": "FAIL", "fired": [...], "regions": [...],
     "part_id": "P-77", "lot": "L-2024-05", "image_sha256": "...", "source": "...",
     "error": null, "inspected_at": 1714640103.1, "latency_ms": 41.2}

Regions are sent without their polygons (bounding box, area, class, confidence). A message that
cannot be understood is answered on the result topic with ``"verdict": "ERROR"`` and the reason.
The station's result messages are sent at QoS 1 and queued by paho while the broker is away; a
``[[sinks]] type = "mqtt"`` sink instead goes through the journal (nothing lost while down).
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable

from inspect_core.errors import InspectError
from inspect_core.types import Inspection

from .config import MqttOptions


def paho():
    """The paho client module, or a clear error when the optional dependency is missing."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError as e:
        raise InspectError("MQTT needs the paho-mqtt package, which is not installed: "
                           "pip install 'inspect-vision[mqtt]'") from e
    return mqtt


def result_message(insp: Inspection, request_id: Any = None) -> dict[str, Any]:
    v = insp.verdict
    regions = []
    for r in v.regions:
        d = r.to_dict()
        d.pop("polygon", None)
        regions.append(d)
    return {"id": request_id if request_id is not None else os.path.basename(insp.source),
            "station": insp.station, "verdict": v.decision.value,
            "fired": [h.to_dict() for h in v.hits], "regions": regions,
            "part_id": insp.part_id, "lot": insp.lot, "image_sha256": insp.image_sha256,
            "source": insp.source, "error": insp.error, "inspected_at": insp.inspected_at,
            "latency_ms": round(insp.latency_ms, 1)}


def parse_trigger(payload: bytes) -> dict[str, Any]:
    """A trigger message -> {"id", "part_id", "lot"}; ValueError says what is wrong."""
    try:
        msg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        text = payload[:60].decode("utf-8", "replace")
        raise ValueError(f"trigger message is not JSON ({text!r}); send e.g. "
                         '{"id": "A-1042", "part_id": "P-77", "lot": "L-5"}') from None
    if isinstance(msg, (str, int)) and not isinstance(msg, bool):
        return {"id": msg, "part_id": None, "lot": None}
    if not isinstance(msg, dict):
        raise ValueError(f"trigger message must be a JSON object with an \"id\", got {msg!r}")
    if msg.get("id") in (None, ""):
        raise ValueError("trigger message has no \"id\"; the result is published with it, "
                         'so send e.g. {"id": "A-1042"}')
    out = {"id": msg["id"], "part_id": msg.get("part_id"), "lot": msg.get("lot")}
    for k in ("part_id", "lot"):
        if out[k] is not None:
            out[k] = str(out[k])
    return out


class MqttLink:
    """One connection to the broker: subscribes to the trigger topic, publishes results.

    Connects in the background and reconnects by itself (1 to 30 s back-off); ``connected``
    says whether it is up now.
    """

    def __init__(self, opt: MqttOptions, station: str, log,
                 on_trigger: Callable[[dict[str, Any]], None] | None = None):
        self.opt, self.station, self.log, self.on_trigger = opt, station, log, on_trigger
        self.connected = False
        self._closing = False
        self._event = threading.Event()
        self._last: list = []
        mqtt = paho()
        cid = opt.client_id or f"inspect-{station}-{os.getpid()}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        if opt.username:
            self.client.username_pw_set(opt.username, opt.password)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self, wait_s: float = 5.0) -> "MqttLink":
        self.client.connect_async(self.opt.host, self.opt.port, self.opt.keepalive)
        self.client.loop_start()
        if not self._event.wait(wait_s):
            self.log.warning("mqtt_unavailable",
                             f"MQTT broker {self.opt.host}:{self.opt.port} not reachable yet; "
                             "the station keeps trying (results are queued)")
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self.log.error("mqtt_refused", f"MQTT broker {self.opt.host}:{self.opt.port} refused "
                                           f"the connection: {reason_code}; check mqtt.username "
                                           "/ mqtt.password")
            return
        self.connected = True
        if self.opt.trigger_topic and self.on_trigger is not None:
            client.subscribe(self.opt.trigger_topic, qos=self.opt.qos)
        self.log.info("mqtt_connected", f"MQTT connected to {self.opt.host}:{self.opt.port}"
                      + (f", triggers on {self.opt.trigger_topic}" if self.opt.trigger_topic else ""))
        self._event.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if self.connected and not self._closing:
            self.log.warning("mqtt_lost", f"MQTT connection lost ({reason_code}); reconnecting")
        self.connected = False

    def _on_message(self, client, userdata, msg) -> None:
        try:
            trig = parse_trigger(msg.payload)
        except ValueError as e:
            self.log.error("bad_trigger", f"{msg.topic}: {e}")
            self.publish_error(None, str(e))
            return
        if self.on_trigger is not None:
            self.on_trigger(trig)

    def publish(self, topic: str | None, message: dict[str, Any]) -> None:
        if not topic:
            return
        info = self.client.publish(topic, json.dumps(message, default=str), qos=self.opt.qos)
        self._last = [i for i in self._last[-50:] if not i.is_published()] + [info]

    def publish_result(self, insp: Inspection, request_id: Any = None) -> None:
        self.publish(self.opt.result_topic, result_message(insp, request_id))

    def publish_error(self, request_id: Any, reason: str, **extra: Any) -> None:
        self.publish(self.opt.result_topic, {"id": request_id, "station": self.station,
                                             "verdict": "ERROR", "error": reason, **extra})

    def close(self, timeout_s: float = 5.0) -> None:
        end = time.monotonic() + timeout_s
        for info in self._last:
            if self.connected and not info.is_published():
                try:
                    info.wait_for_publish(max(0.0, end - time.monotonic()))
                except (RuntimeError, ValueError):
                    pass
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()


class MqttSink:
    """The ``mqtt`` sink: publishes each inspection's result message to ``topic``.

    Config keys: ``host`` (127.0.0.1), ``port`` (1883), ``topic`` (required), ``qos`` (1),
    ``client_id``, ``username``, ``password``, ``timeout_s`` (5). ``write`` waits for the
    broker's acknowledgement and raises when it does not come, so a station journals the result
    and sends it again later.
    """

    def __init__(self, config: dict[str, Any]):
        config = dict(config)
        config.pop("type", None)
        self.topic = config.pop("topic", None)
        if not self.topic:
            raise InspectError("the mqtt sink needs a topic (topic = \"plant/results\")")
        self.timeout_s = float(config.pop("timeout_s", 5.0))
        known = {f for f in MqttOptions.__dataclass_fields__}
        unknown = set(config) - known
        if unknown:
            raise InspectError(f"mqtt sink: unknown keys {sorted(unknown)}; known: topic, "
                               "timeout_s, " + ", ".join(sorted(known)))
        self.opt = MqttOptions(**config)
        from .logs import StationLog

        self.link = MqttLink(self.opt, "sink", StationLog("mqtt-sink"))
        self.link.client.connect_async(self.opt.host, self.opt.port, self.opt.keepalive)
        self.link.client.loop_start()
        if not self.link._event.wait(self.timeout_s):
            self.link.client.loop_stop()
            raise ConnectionError(f"MQTT broker {self.opt.host}:{self.opt.port} not reachable "
                                  f"within {self.timeout_s} s")

    def write(self, inspection: Inspection) -> None:
        info = self.link.client.publish(self.topic, json.dumps(result_message(inspection),
                                                               default=str), qos=self.opt.qos)
        if self.opt.qos > 0:
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise ConnectionError(f"MQTT broker {self.opt.host}:{self.opt.port} did not "
                                      f"acknowledge within {self.timeout_s} s")

    def close(self) -> None:
        self.link.close(self.timeout_s)
