"""A private Mosquitto broker for tests (on a free 127.0.0.1 port, stopped and restarted at will),
a CA and server certificate made with the openssl CLI, and a subscriber that collects messages.
Tests using it skip when /usr/sbin/mosquitto (or openssl, mosquitto_passwd) is missing."""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from inspect_stations.testing import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
needs_mosquitto = pytest.mark.skipif(
    not os.access(MOSQUITTO, os.X_OK), reason="mosquitto is not installed"
)


class Mosquitto:
    """``Mosquitto(folder, **options).start()``; ``options`` go into its config file."""

    def __init__(self, folder: Path, port: int | None = None, **options: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "log_dest stderr",
            f"allow_anonymous {options.pop('allow_anonymous', 'true')}",
        ]
        if options.pop("persistence", False):  # sessions survive a restart
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it switches to "mosquitto" and cannot read tmp files
        lines += [f"{k} {v}" for k, v in options.items()]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        self.log = open(self.folder / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT
        )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def make_certs(folder: Path, host_ip: str = "127.0.0.1") -> dict[str, Path]:
    """A CA, and a server certificate it signed for ``host_ip`` (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    p = {
        n: folder / n
        for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "ext.cnf")
    }

    def run(command: str) -> None:  # file names in ``command`` are those of ``p``
        args = [str(p[a]) if a in p else a for a in command.split()]
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"  # fast to make
    run(f"req -x509 {ec} -days 2 -subj /CN=inspect-test-CA -keyout ca.key -out ca.crt")
    run(f"req {ec} -subj /CN={host_ip} -keyout server.key -out server.csr")
    p["ext.cnf"].write_text(f"subjectAltName = IP:{host_ip}\n")
    run(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-out server.crt -extfile ext.cnf"
    )
    return p


class Subscriber:
    """Collects the JSON messages of one topic (QoS 1)."""

    def __init__(
        self,
        port: int,
        topic: str,
        host: str = "127.0.0.1",
        tls_ca: Path | None = None,
        login: tuple[str, str] | None = None,
        client_id: str | None = None,
    ):
        mqtt = pytest.importorskip("paho.mqtt.client")
        self.messages: queue.Queue = queue.Queue()
        self.raw: list[bytes] = []
        ready = threading.Event()
        # a fixed client id keeps its session (and the messages queued for it) across a restart
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"sub-{uuid.uuid4().hex}",
            clean_session=client_id is None,
        )
        if tls_ca:
            self.c.tls_set(ca_certs=str(tls_ca))
        if login:
            self.c.username_pw_set(*login)
        self.c.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda *a: ready.set()

        def on_message(c, u, m):
            self.raw.append(m.payload)
            self.messages.put(json.loads(m.payload))

        self.c.on_message = on_message
        self.c.connect(host, port)
        self.c.loop_start()
        assert ready.wait(10), "the test subscriber could not subscribe"

    def take(self, n: int, timeout: float = 20) -> list[dict]:
        return [self.messages.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Records(logging.Handler):
    """The station log lines of one test: ``events`` and ``text``."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(f"test.mqtt.{uuid.uuid4().hex}")
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def emit(self, record):
        self.records.append(record)

    @property
    def events(self) -> list[str]:
        return [getattr(r, "event", None) for r in self.records]

    def text(self, event: str) -> str:
        return "\n".join(r.getMessage() for r in self.records if getattr(r, "event", None) == event)
