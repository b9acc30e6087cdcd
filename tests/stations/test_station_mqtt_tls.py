"""MQTT login and TLS, in [mqtt] and in the mqtt sink: the password comes from the environment
(password_env; a password in the file is refused), the broker's certificate is verified against
ca_file. Against a Mosquitto started by the test with a CA and server certificate made by the
test (openssl) and a password file (mosquitto_passwd)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from broker_kit import Mosquitto, Records, Subscriber, make_certs, needs_mosquitto

from inspect_core.types import Decision, Inspection, Verdict
from inspect_stations.config.station import ConfigError, parse_config
from inspect_stations.logs import StationLog
from inspect_stations.testing import wait_for

pytest.importorskip("paho.mqtt.client")
USER, SECRET = "line1", "s3cret-pw"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One broker: TLS with a test CA, and a login required."""
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.skip("mosquitto_passwd is not installed")
    folder = tmp_path_factory.mktemp("broker")
    certs = make_certs(folder / "certs")
    pw = folder / "passwords"
    subprocess.run(
        [passwd, "-b", "-c", str(pw), USER, SECRET], check=True, timeout=30, capture_output=True
    )
    pw.chmod(0o600)
    b = Mosquitto(
        folder,
        allow_anonymous="false",
        password_file=str(pw),
        cafile=str(certs["ca.crt"]),
        certfile=str(certs["server.crt"]),
        keyfile=str(certs["server.key"]),
    ).start()
    b.certs = certs
    yield b
    b.stop()


def _config(tmp_path: Path, mqtt: dict) -> dict:
    return {
        "station": {"name": "tls", "plugin": "x", "recipe": "x"},
        "source": {"type": "folder", "path": "inbox"},
        "mqtt": mqtt,
    }


def _link(opt, rec: Records):
    from inspect_stations.mqtt.link import MqttLink

    return MqttLink(opt, "tls", StationLog("tls", rec.logger)).start(wait_s=10)


@needs_mosquitto
def test_tls_with_a_login_from_the_environment(tmp_path, broker, monkeypatch):
    monkeypatch.setenv("LINE1_MQTT_PASSWORD", SECRET)
    shutil.copy(broker.certs["ca.crt"], tmp_path / "ca.crt")
    topic = f"test/{uuid.uuid4().hex}/result"
    cfg = parse_config(
        _config(
            tmp_path,
            {
                "port": broker.port,
                "result_topic": topic,
                "username": USER,
                "password_env": "LINE1_MQTT_PASSWORD",
                "ca_file": "ca.crt",
            },
        ),
        tmp_path,
    )
    m = cfg.mqtt
    assert m.tls and m.ca_file == tmp_path / "ca.crt"
    assert m.password is not None and m.password.get_secret_value() == SECRET  # a SecretStr
    assert SECRET not in repr(m)
    sub = Subscriber(broker.port, topic, tls_ca=broker.certs["ca.crt"], login=(USER, SECRET))
    rec = Records()
    link = _link(m, rec)
    try:
        assert link.connected, link.last_error
        link.publish(topic, {"id": "A-1"})
        assert sub.take(1)[0]["id"] == "A-1"
    finally:
        link.close()
        sub.close()
    assert not any(SECRET in r.getMessage() for r in rec.records)


@needs_mosquitto
def test_a_broker_certificate_from_another_ca_is_refused(tmp_path, broker, monkeypatch):
    """TLS without our CA (the system's CAs do not know the test CA): no connection, and the
    reason says what to check; a plain connection to the TLS port is refused too."""
    from inspect_stations.config.mqtt import MqttOptions

    rec = Records()
    link = _link(
        MqttOptions(port=broker.port, tls=True, username=USER, password=SECRET, result_topic="x"),
        rec,
    )
    try:
        assert not link.connected
        assert "certificate verify failed" in link.last_error.lower()
        assert "mqtt.ca_file" in link.last_error and link.status()["needs_action"]
        assert "mqtt.ca_file" in rec.text("mqtt_unavailable")
    finally:
        link.close()
    plain = _link(MqttOptions(port=broker.port, username=USER, password=SECRET), Records())
    try:
        assert not plain.connected and plain.last_error
    finally:
        plain.close()


@needs_mosquitto
def test_a_wrong_password_is_reported_as_refused(tmp_path, broker, monkeypatch):
    monkeypatch.setenv("LINE1_MQTT_PASSWORD", "wrong")
    cfg = parse_config(
        _config(
            tmp_path,
            {
                "port": broker.port,
                "result_topic": "x",
                "username": USER,
                "password_env": "LINE1_MQTT_PASSWORD",
                "ca_file": str(broker.certs["ca.crt"]),
            },
        ),
        tmp_path,
    )
    rec = Records()
    link = _link(cfg.mqtt, rec)
    try:
        wait_for(lambda: "refused" in (link.last_error or ""), timeout=10, what="the refusal")
        assert not link.connected and "password_env" in link.last_error
        assert rec.events.count("mqtt_refused") == 1 and "mqtt_unavailable" not in rec.events
    finally:
        link.close()


@needs_mosquitto
def test_the_mqtt_sink_takes_tls_and_a_login(tmp_path, broker, monkeypatch):
    from inspect_stations.mqtt.sink import MqttSink

    monkeypatch.setenv("SINK_PW", SECRET)
    topic = f"test/{uuid.uuid4().hex}/all"
    raw = _config(tmp_path, {"result_topic": "x"})
    raw["sinks"] = [
        {
            "type": "mqtt",
            "port": broker.port,
            "topic": topic,
            "username": USER,
            "password_env": "SINK_PW",
            "tls": True,
            "ca_file": str(broker.certs["ca.crt"]),
        }
    ]
    cfg = parse_config(raw, tmp_path)
    sub = Subscriber(broker.port, topic, tls_ca=broker.certs["ca.crt"], login=(USER, SECRET))
    sink = MqttSink(cfg.sinks[0])
    try:
        sink.write(
            Inspection(
                station="tls",
                plugin="x",
                recipe="x",
                source="/in/a.png",
                image_sha256="a" * 64,
                width=1,
                height=1,
                verdict=Verdict(Decision.PASS),
            )
        )
        assert sub.take(1)[0]["id"] == "a.png"
    finally:
        sink.close()
        sub.close()


def test_passwords_stay_out_of_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_PW", raising=False)
    (tmp_path / "key.pem").write_text("x")
    raw = _config(
        tmp_path,
        {
            "username": "u",
            "password": "hunter2",
            "key_file": "key.pem",
            "ca_file": "missing.crt",
            "tls": False,
        },
    )
    raw["sinks"] = [
        {"type": "mqtt", "topic": "t", "username": "u", "password": "hunter2"},
        {"type": "mqtt", "topic": "t", "username": "u", "password_env": "NOT_SET_PW"},
        {"type": "mqtt", "password_env": "also bad"},
    ]
    with pytest.raises(ConfigError) as e:
        parse_config(raw, tmp_path)
    p = dict(e.value.problems)
    assert 'password_env = "MQTT_PASSWORD"' in p["mqtt.password"]
    assert "password_env" in p["sinks[0].password"]
    assert "NOT_SET_PW is not set" in p["sinks[1].password_env"]
    assert "name of an environment variable" in p["sinks[2].password_env"]
    assert "required" in p["sinks[2].topic"]
    assert "missing.crt not found" in p["mqtt.ca_file"]
    assert "needs cert_file" in p["mqtt.key_file"] and "set tls = true" in p["mqtt.tls"]
    assert not any("hunter2" in m for m in p.values())


def test_tls_defaults(tmp_path):
    from inspect_stations.config.mqtt import MQTTS_PORT

    (tmp_path / "ca.crt").write_text("x")
    cfg = parse_config(_config(tmp_path, {"tls": True, "result_topic": "r"}), tmp_path)
    assert cfg.mqtt.tls and cfg.mqtt.port == MQTTS_PORT and not cfg.mqtt.tls_insecure
    cfg = parse_config(_config(tmp_path, {"result_topic": "r"}), tmp_path)
    assert not cfg.mqtt.tls and cfg.mqtt.port == 1883
