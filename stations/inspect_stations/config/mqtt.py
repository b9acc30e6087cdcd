"""The ``[mqtt]`` table and the ``mqtt`` sink's keys: broker, topics, login and TLS.

The password never sits in the file: ``password_env`` names the environment variable that holds
it (a plain ``password`` key is refused). TLS is on with ``tls = true`` (or when ``ca_file`` /
``cert_file`` is given); the broker's certificate is verified against ``ca_file`` (else the
system's CAs) and its host name checked unless ``tls_insecure = true`` (for tests only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator

from inspect_core.config import Problem, Settings, lenient
from inspect_stations.config.toml_reader import ConfigError, ConfigPath, NonEmpty, WithEnv

MQTT_PORT, MQTTS_PORT = 1883, 8883
MAX_QUEUED = 10_000  # results held for the broker while it is away (the oldest are dropped)


def topic_ok(v: str) -> str:
    if not v.strip() or "\0" in v:
        raise ValueError("must be a non-empty MQTT topic")
    return v


def publish_topic_ok(v: str) -> str:
    """A topic to publish to: a topic without the wildcards of a subscription."""
    if any(c in v for c in "+#"):
        raise ValueError("a topic to publish to cannot contain the wildcards + or #")
    return topic_ok(v)


def _port(v: int) -> int:
    if not 0 < v < 65536:
        raise ValueError(f"must be a TCP port 1..65535, got {v!r}")
    return v


def _env_name(v: str) -> str:
    if not v.isidentifier() or not v.isascii():
        raise ValueError("must be the name of an environment variable (e.g. MQTT_PASSWORD)")
    return v


PublishTopic = Annotated[str, AfterValidator(publish_topic_ok)]
NO_PASSWORD = (
    "a password does not go in the configuration file: put it in an environment variable and "
    'name that variable here, e.g. password_env = "MQTT_PASSWORD"'
)


class MqttBroker(Settings):
    """The broker keys ``[mqtt]`` and an ``mqtt`` sink share."""

    host: NonEmpty = Field(default="127.0.0.1", description="the broker's host name or address")
    port: Annotated[int, AfterValidator(_port)] | None = Field(
        default=None, description="TCP port 1..65535; default 1883, 8883 with TLS"
    )
    client_id: str = Field(default="", description="MQTT client id; default: one of the station's")
    qos: Literal[0, 1, 2] = Field(default=1, description="MQTT quality of service")
    username: WithEnv | None = Field(
        default=None, description="login; ${VAR} reads the environment"
    )
    password_env: Annotated[str, AfterValidator(_env_name)] | None = Field(
        default=None, description="the environment variable that holds the password"
    )
    password: SecretStr | None = Field(
        default=None, repr=False, description="never in the file: read from password_env"
    )
    keepalive: int = Field(default=30, gt=0, description="seconds between pings")
    tls: bool | None = Field(default=None, description="TLS; default: on when ca_file or cert_file")
    ca_file: ConfigPath | None = Field(default=None, description="CA certificate(s) of the broker")
    cert_file: ConfigPath | None = Field(default=None, description="client certificate")
    key_file: ConfigPath | None = Field(default=None, description="client key (needs cert_file)")
    tls_insecure: bool = Field(default=False, description="skip the host name check (tests only)")
    max_queued: int = Field(
        default=MAX_QUEUED, gt=0, description="results held while the broker is away"
    )

    @field_validator("password", mode="before")
    @classmethod
    def _no_password_in_files(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(info.context, dict) and "base" in info.context:
            raise ValueError(NO_PASSWORD)
        return v

    def model_post_init(self, context: Any) -> None:
        implied = self.ca_file is not None or self.cert_file is not None
        if self.tls is None:
            self.tls = implied
        if self.port is None:
            self.port = MQTTS_PORT if self.tls else MQTT_PORT


class MqttOptions(MqttBroker):
    """``[mqtt]``: the broker, and the topics the station takes triggers from and sends
    results and alerts to."""

    trigger_topic: Annotated[str, AfterValidator(topic_ok)] | None = Field(
        default=None, description="subscribe: a message here triggers a camera capture"
    )
    result_topic: PublishTopic | None = Field(default=None, description="publish each result here")
    event_topic: PublishTopic | None = Field(
        default=None, description="publish the station's alerts here (e.g. input_drift)"
    )


class MqttSinkTable(MqttBroker):
    """``[[sinks]] type = "mqtt"``: the broker keys, plus the topic and the publish timeout."""

    type: Literal["mqtt"] = "mqtt"
    topic: PublishTopic = Field(
        json_schema_extra={"hint": 'the topic results are published to, e.g. "plant/results"'}
    )
    timeout_s: float = Field(default=5.0, gt=0, allow_inf_nan=False, description="publish timeout")


@dataclass
class MqttSinkOptions:
    mqtt: MqttOptions
    topic: str
    timeout_s: float = 5.0


def login_tls_problems(m: MqttBroker, raw: dict[str, Any], prefix: str) -> list[Problem]:
    """What needs several keys: the password read from ``password_env``, the certificate files
    there and readable, TLS on when they are given."""
    out: list[Problem] = []
    if m.password_env:
        if not m.username:
            out.append((f"{prefix}.password_env", 'give the user name too (username = "...")'))
        if m.password_env in os.environ:
            m.password = SecretStr(os.environ[m.password_env])
        else:
            out.append(
                (
                    f"{prefix}.password_env",
                    f"environment variable {m.password_env} is not set; set it to the broker "
                    f"password where the station runs (docker run -e {m.password_env}=...)",
                )
            )
    for key in ("ca_file", "cert_file", "key_file"):
        p: Path | None = getattr(m, key)
        if p is not None and not p.is_file():
            where = "relative paths start at the configuration file's folder"
            out.append((f"{prefix}.{key}", f"file {p} not found ({where})"))
        elif p is not None and not os.access(p, os.R_OK):
            out.append((f"{prefix}.{key}", f"file {p} is not readable by this user"))
    if (m.ca_file is not None or m.cert_file is not None) and raw.get("tls") is False:
        out.append(
            (
                f"{prefix}.tls",
                "is false but ca_file / cert_file are given: set tls = true, or "
                "remove the certificate files",
            )
        )
    if m.key_file is not None and m.cert_file is None:
        out.append((f"{prefix}.key_file", "needs cert_file (the client certificate it belongs to)"))
    if m.tls_insecure and not m.tls:
        out.append((f"{prefix}.tls_insecure", "only applies with tls = true"))
    return out


def mqtt_options(
    t: dict[str, Any], base: Path, prefix: str = "mqtt"
) -> tuple[MqttOptions, list[Problem]]:
    """An ``[mqtt]`` table, and every problem under ``prefix``."""
    m, problems = lenient(MqttOptions, t, prefix, {"base": base})
    return m, problems + login_tls_problems(m, t, prefix)


def mqtt_sink_options(
    t: dict[str, Any], base: Path, prefix: str
) -> tuple[MqttSinkOptions, list[Problem]]:
    """The keys of a ``[[sinks]] type = "mqtt"`` table, and every problem under ``prefix``."""
    s, problems = lenient(MqttSinkTable, t, prefix, {"base": base}, {"topic": "-"})
    problems += login_tls_problems(s, t, prefix)
    broker = s.model_dump(exclude={"type", "topic", "timeout_s"})
    return MqttSinkOptions(MqttOptions(**broker), s.topic, s.timeout_s), problems


def sink_options(config: dict[str, Any], base: Path, prefix: str = "mqtt sink") -> MqttSinkOptions:
    """A sink's options from its table, or :class:`ConfigError` with every problem."""
    options, problems = mqtt_sink_options(config, base, prefix)
    if problems:
        raise ConfigError(problems)
    return options
