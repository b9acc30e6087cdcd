"""MQTT topic filters, and a station that would trigger itself on its own results: refused by
`station check` and by the configuration `station run` loads."""

from __future__ import annotations

import pytest

from inspect_stations.config.check import check_file
from inspect_stations.mqtt.topics import filter_problem, topic_matches
from inspect_stations.testing import write_config


@pytest.mark.parametrize(
    "filt, topic, hit",
    [
        ("line/trigger", "line/trigger", True),
        ("line/trigger", "line/result", False),
        ("line/#", "line/result", True),
        ("line/#", "line", True),
        ("#", "a/b/c", True),
        ("+/result", "line/result", True),
        ("+/result", "line/a/result", False),
        ("line/+", "line", False),
        ("line/+/x", "line//x", True),
        ("#", "$SYS/broker", False),
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("Line/#", "line/result", False),
    ],
)
def test_topic_filters_match_as_the_broker_does(filt, topic, hit):
    assert topic_matches(filt, topic) is hit


def test_malformed_filters_are_named():
    assert filter_problem("line/#") is None and filter_problem("+/x/+") is None
    assert "'#'" in filter_problem("line/#/x") and "'#'" in filter_problem("line#")
    assert "'+'" in filter_problem("line/a+")


def _station(tmp_path, mqtt: dict, sinks: list | None = None):
    write_config(
        tmp_path / "cam.toml",
        {
            "station": {"name": "cam", "plugin": "nosuch", "recipe": "nosuch"},
            "source": {"type": "camera", "url": "clip.avi", "trigger": "mqtt"},
            "mqtt": {"host": "127.0.0.1", **mqtt},
        },
    )
    with open(tmp_path / "cam.toml", "a") as f:
        for sink in sinks or []:
            f.write("[[sinks]]\n" + "".join(f'{k} = "{v}"\n' for k, v in sink.items()))
    return dict(check_file(tmp_path / "cam.toml")[1])


@pytest.mark.parametrize(
    "trigger, result",
    [("line/#", "line/result"), ("line/trigger", "line/trigger"), ("+/+", "line/result")],
)
def test_a_trigger_topic_that_matches_the_result_topic_is_refused(tmp_path, trigger, result):
    p = _station(tmp_path, {"trigger_topic": trigger, "result_topic": result})
    assert "endless loop" in p.get("mqtt.trigger_topic", ""), p
    assert "mqtt.result_topic" in p["mqtt.trigger_topic"]


def test_a_trigger_topic_that_matches_an_mqtt_sink_on_the_same_broker_is_refused(tmp_path):
    sink = {"type": "mqtt", "host": "127.0.0.1", "topic": "line/results"}
    p = _station(tmp_path, {"trigger_topic": "line/#", "result_topic": "out/r"}, [sink])
    assert "sinks[0].topic" in p.get("mqtt.trigger_topic", ""), p
    # another broker: its messages never come back here
    other = {**sink, "host": "broker2.test"}
    p = _station(tmp_path, {"trigger_topic": "line/#", "result_topic": "out/r"}, [other])
    assert "mqtt.trigger_topic" not in p, p


def test_separate_topics_pass_and_a_malformed_filter_is_named(tmp_path):
    p = _station(tmp_path, {"trigger_topic": "line/+/trigger", "result_topic": "line/result"})
    assert "mqtt.trigger_topic" not in p, p
    p = _station(tmp_path, {"trigger_topic": "line/#/x", "result_topic": "out"})
    assert "not a valid topic filter" in p.get("mqtt.trigger_topic", ""), p


def test_station_run_refuses_it_too(tmp_path):
    from inspect_stations.config.station import ConfigError, parse_config

    raw = {
        "station": {"name": "cam", "plugin": "x", "recipe": "x"},
        "source": {"type": "camera", "url": "clip.avi", "trigger": "mqtt"},
        "mqtt": {"trigger_topic": "line/#", "result_topic": "line/result"},
    }
    with pytest.raises(ConfigError) as e:
        parse_config(raw, tmp_path)
    assert "endless loop" in dict(e.value.problems).get("mqtt.trigger_topic", "")
