"""The paho-mqtt client of a station: imported lazily, with login and TLS, and its failures in
words (what was wrong, and which ``[mqtt]`` key to check)."""

from __future__ import annotations

import ssl
from types import ModuleType
from typing import TYPE_CHECKING

from inspect_core.errors import InspectError
from inspect_stations.config.mqtt import MqttOptions

if TYPE_CHECKING:
    from paho.mqtt.client import Client


def paho() -> ModuleType:
    """The paho client module, or a clear error when the optional dependency is missing."""
    try:
        import paho.mqtt.client as mqtt  # lazy: the mqtt extra; missing, it is said in words
    except ImportError as e:
        raise InspectError(
            "MQTT needs the paho-mqtt package, which is not installed: "
            "pip install 'inspect-stations[mqtt]'"
        ) from e
    return mqtt


def make_client(opt: MqttOptions, client_id: str) -> Client:
    """A paho client with the login and TLS settings of ``opt`` (nothing connected yet)."""
    mqtt = paho()
    client: Client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if opt.username:
        password = opt.password.get_secret_value() if opt.password else None
        client.username_pw_set(opt.username, password)
    if opt.tls:
        try:
            client.tls_set(
                ca_certs=str(opt.ca_file) if opt.ca_file else None,
                certfile=str(opt.cert_file) if opt.cert_file else None,
                keyfile=str(opt.key_file) if opt.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (ssl.SSLError, OSError, ValueError) as e:
            raise InspectError(
                f"MQTT TLS settings: cannot load the certificates ({e}); check "
                "mqtt.ca_file, cert_file and key_file"
            ) from None
        client.tls_insecure_set(opt.tls_insecure)
    client.reconnect_delay_set(1, 30)
    return client


def why_not(e: BaseException, opt: MqttOptions) -> str:
    """A failed connection attempt in words, with what to check."""
    where = f"MQTT broker {opt.host}:{opt.port}"
    if isinstance(e, ssl.SSLCertVerificationError):
        return (
            f"TLS: {where} sent a certificate that failed verification: certificate verify "
            f"failed ({e.verify_message}); check mqtt.ca_file (the CA that signed the "
            "broker's certificate) and that mqtt.host is a name in that certificate"
        )
    if isinstance(e, ssl.SSLError):
        return (
            f"TLS handshake with {where} failed ({getattr(e, 'reason', None) or e}); check "
            "mqtt.ca_file (the CA that signed the broker's certificate), the host name in "
            "that certificate, and that the broker's port speaks TLS"
        )
    if opt.tls and isinstance(e, (ConnectionResetError, EOFError)):
        return f"{where} closed the TLS connection: does that port speak TLS?"
    return f"{where} not reachable ({getattr(e, 'strerror', None) or e})"
