"""MQTT topic filters (``+`` one level, ``#`` the rest) and the check that a station cannot
trigger itself.

A trigger topic that matches the topic the station publishes its results to (``trigger_topic =
"line/#"`` with ``result_topic = "line/result"``, or the same topic twice) turns every result
into a trigger: one part becomes an endless capture loop under the same part id. `station check`
and `station run` refuse such a configuration, for the ``[mqtt]`` result topic and for the topic
of every ``[[sinks]] type = "mqtt"`` on the same broker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inspect_stations.config.mqtt import MQTT_PORT, MQTTS_PORT, MqttOptions


def filter_problem(filt: str) -> str | None:
    """What is wrong with a subscription filter, or None: ``#`` only as the whole last level,
    ``+`` only as a whole level."""
    levels = filt.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "'#' must be the last level on its own (e.g. line1/#)"
        if "+" in level and level != "+":
            return "'+' must be a level on its own (e.g. line1/+/trigger)"
    return None


def topic_matches(filt: str, topic: str) -> bool:
    """Whether a message published on ``topic`` is delivered to a subscription to ``filt``
    (MQTT 3.1.1 section 4.7: a wildcard at the first level does not match a ``$`` topic)."""
    if topic.startswith("$") and filt[:1] in ("+", "#"):
        return False
    want, have = filt.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True  # also matches the parent level: "line/#" matches "line"
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


def _broker(t: dict[str, Any]) -> tuple[str, int]:
    """The (host, port) a sink's table names, with the defaults of :mod:`.mqttconf`."""
    tls = bool(t.get("tls") or t.get("ca_file") or t.get("cert_file"))
    port = t.get("port")
    default = MQTTS_PORT if tls else MQTT_PORT
    return str(t.get("host", "127.0.0.1")), port if isinstance(port, int) else default


def check_trigger_loops(
    mqtt: MqttOptions | None, sinks: list[dict[str, Any]], err: Callable[[str, str], None]
) -> None:
    """A trigger topic filter that is malformed, or that matches a topic the station publishes
    to on the same broker: the result topic, or an ``mqtt`` sink's topic."""
    if mqtt is None or not mqtt.trigger_topic:
        return
    filt = mqtt.trigger_topic
    bad = filter_problem(filt)
    if bad:
        err("mqtt.trigger_topic", f"{filt!r} is not a valid topic filter: {bad}")
        return
    published = [
        (key, topic)
        for key, topic in (
            ("mqtt.result_topic", mqtt.result_topic),
            ("mqtt.event_topic", mqtt.event_topic),
        )
        if topic
    ]
    here = (mqtt.host, mqtt.port)
    for i, s in enumerate(sinks):
        if s.get("type") == "mqtt" and isinstance(s.get("topic"), str) and _broker(s) == here:
            published.append((f"sinks[{i}].topic", s["topic"]))
    for key, topic in published:
        if topic_matches(filt, topic):
            err(
                "mqtt.trigger_topic",
                f"{filt!r} matches {topic!r} ({key}), a topic this station publishes its "
                "results to: every result would be taken for a new trigger, an endless loop. "
                "Give the triggers a topic of their own (e.g. line1/trigger with results on "
                "line1/result)",
            )
