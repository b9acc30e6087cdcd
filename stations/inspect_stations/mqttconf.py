"""The ``[mqtt]`` table and the ``mqtt`` sink's keys: broker, topics, login and TLS.

The password never sits in the file: ``password_env`` names the environment variable that holds
it (a plain ``password`` key is refused). TLS is on with ``tls = true`` (or when ``ca_file`` /
``cert_file`` is given); the broker's certificate is verified against ``ca_file`` (else the
system's CAs) and its host name checked unless ``tls_insecure = true`` (for tests only).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from inspect_stations.toml_reader import Reader, expand_env, nonempty, positive

MQTT_PORT, MQTTS_PORT = 1883, 8883
MAX_QUEUED = 10_000  # results held for the broker while it is away (the oldest are dropped)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEYS = {
    "host",
    "port",
    "trigger_topic",
    "result_topic",
    "client_id",
    "qos",
    "username",
    "password_env",
    "keepalive",
    "tls",
    "ca_file",
    "cert_file",
    "key_file",
    "tls_insecure",
    "max_queued",
}
SINK_KEYS = (KEYS - {"trigger_topic", "result_topic"}) | {"type", "topic", "timeout_s"}


@dataclass
class MqttOptions:
    host: str = "127.0.0.1"
    port: int = MQTT_PORT
    trigger_topic: str | None = None
    result_topic: str | None = None
    client_id: str = ""
    qos: int = 1
    username: str | None = None
    password_env: str | None = None
    password: str | None = field(default=None, repr=False)  # read from password_env at load
    keepalive: int = 30
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    max_queued: int = MAX_QUEUED


@dataclass
class MqttSinkOptions:
    mqtt: MqttOptions
    topic: str
    timeout_s: float = 5.0


def topic_ok(v: str) -> str | None:
    return None if v.strip() and "\0" not in v else "must be a non-empty MQTT topic"


def publish_topic_ok(v: str) -> str | None:
    """A topic to publish to: a topic without the wildcards of a subscription."""
    if any(c in v for c in "+#"):
        return "a topic to publish to cannot contain the wildcards + or #"
    return topic_ok(v)


# key: (type, check) of the broker keys read the same way; the default is MqttOptions'
SPEC = {
    "host": (str, nonempty),
    "client_id": (str, None),
    "qos": (int, lambda v: None if v in (0, 1, 2) else "must be 0, 1 or 2"),
    "username": (str, nonempty),
    "password_env": (
        str,
        lambda v: (
            None
            if _ENV_NAME.fullmatch(v)
            else "must be the name of an environment variable (e.g. MQTT_PASSWORD)"
        ),
    ),
    "keepalive": (int, positive),
    "max_queued": (int, positive),
}
TOPICS_SPEC = {"trigger_topic": (str, topic_ok), "result_topic": (str, publish_topic_ok)}


def mqtt_options(t: dict, r: Reader, prefix: str = "mqtt", known: set[str] = KEYS) -> MqttOptions:
    """Read an ``[mqtt]`` table (or a sink's), adding every problem to ``r`` under ``prefix``."""
    r.unknown({k: v for k, v in t.items() if k != "password"}, prefix, known)
    if "password" in t:
        r.err(
            f"{prefix}.password",
            "a password does not go in the configuration file: put it in an "
            "environment variable and name that variable here, e.g. "
            'password_env = "MQTT_PASSWORD"',
        )
    m = r.fill(MqttOptions(), t, prefix, SPEC)
    if "trigger_topic" in known:
        r.fill(m, t, prefix, TOPICS_SPEC)
    _login(r, prefix, m)
    _tls(t, r, prefix, m)
    m.port = r.get(
        t,
        prefix,
        "port",
        int,
        MQTTS_PORT if m.tls else MQTT_PORT,
        lambda v: None if 0 < v < 65536 else "must be a TCP port 1..65535",
    )
    return m


def _login(r: Reader, prefix: str, m: MqttOptions) -> None:
    """The user name (``${VAR}`` read from the environment) and the password, read from the
    environment variable ``password_env`` names."""
    if m.username:
        m.username = expand_env(m.username, f"{prefix}.username", r)
    if not m.password_env:
        return
    if not m.username:
        r.err(f"{prefix}.password_env", 'give the user name too (username = "...")')
    m.password = os.environ.get(m.password_env)
    if m.password is None:
        r.err(
            f"{prefix}.password_env",
            f"environment variable {m.password_env} is not set; set it "
            "to the broker password where the station runs (docker run "
            f"-e {m.password_env}=...)",
        )


def _tls(t: dict, r: Reader, prefix: str, m: MqttOptions) -> None:
    for key in ("ca_file", "cert_file", "key_file"):
        p = r.path(t, prefix, key, None)
        if p is not None and not p.is_file():
            r.err(
                f"{prefix}.{key}",
                f"file {p} not found (relative paths start at the configuration file's folder)",
            )
        elif p is not None and not os.access(p, os.R_OK):
            r.err(f"{prefix}.{key}", f"file {p} is not readable by this user")
        setattr(m, key, p)
    implied = m.ca_file is not None or m.cert_file is not None
    m.tls = r.get(t, prefix, "tls", bool, implied)
    m.tls_insecure = r.get(t, prefix, "tls_insecure", bool, False)
    if implied and not m.tls:
        r.err(
            f"{prefix}.tls",
            "is false but ca_file / cert_file are given: set tls = true, or "
            "remove the certificate files",
        )
    if m.key_file is not None and m.cert_file is None:
        r.err(f"{prefix}.key_file", "needs cert_file (the client certificate it belongs to)")
    if m.tls_insecure and not m.tls:
        r.err(f"{prefix}.tls_insecure", "only applies with tls = true")


def mqtt_sink_options(t: dict, r: Reader, prefix: str) -> MqttSinkOptions:
    """The keys of a ``[[sinks]] type = "mqtt"`` table: the broker keys plus ``topic`` and
    ``timeout_s``."""
    topic = r.get(t, prefix, "topic", str, None, publish_topic_ok)
    if "topic" not in t:
        r.err(
            f"{prefix}.topic",
            'required (the topic results are published to, e.g. topic = "plant/results")',
        )
    timeout_s = r.get(t, prefix, "timeout_s", float, 5.0, positive)
    return MqttSinkOptions(mqtt_options(t, r, prefix, SINK_KEYS), topic or "", timeout_s)
