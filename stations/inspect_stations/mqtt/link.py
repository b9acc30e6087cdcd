"""MQTT as a PLC uses it: a trigger topic in, a result topic out (paho-mqtt, imported lazily).

Trigger message (JSON; a bare JSON string or integer is taken as the id; checked by
:func:`inspect_stations.mqtt.trigger.parse_trigger`)::

    {"id": "A-1042", "part_id": "P-77", "lot": "L-2024-05"}

Result message, on the result topic, with the trigger's id (folder stations publish one per
file, with the file name as id)::

    {"id": "A-1042", "station": "line1", "verdict": "FAIL", "fired": [...], "regions": [...],
     "part_id": "P-77", "lot": "L-2024-05", "image_sha256": "...", "source": "...",
     "error": null, "inspected_at": 1714640103.1, "latency_ms": 41.2,
     "inspect_ms": 38.0, "queue_ms": 3.2}

Regions are sent without their polygons (bounding box, area, class, confidence).
``latency_ms`` is split into ``inspect_ms`` (working on the image) and ``queue_ms`` (waiting for
the station's threads), as recorded. A message that
cannot be understood is answered on the result topic with ``"verdict": "ERROR"`` and the reason.
A retained trigger (the broker keeps it and sends it at every connect) is never acted on: it is
logged (``retained_trigger``, with the command that clears it) and ignored, and so is a message
on the station's own result topic. Each trigger is stamped with ``received``
(``time.monotonic()`` on arrival): a camera takes the frame captured after it.

The broker being away never stops the line: results are recorded as usual, and their MQTT
messages wait in a bounded queue (``max_queued``; when it is full the oldest are dropped and
counted) until the link is back (reconnecting every 1 s, backing off to 30 s), then go out in
order. ``status()`` says whether someone needs to act. A ``[[sinks]] type = "mqtt"`` sink
(:mod:`inspect_stations.mqtt.sink`) instead goes through the journal (nothing lost while down).
The paho client itself, with login and TLS, is made in :mod:`inspect_stations.mqtt.client`.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from inspect_core.types import Inspection
from inspect_stations.config.mqtt import MqttOptions
from inspect_stations.mqtt.client import make_client, paho, why_not
from inspect_stations.mqtt.trigger import TriggerError, encode, parse_trigger, result_message

WINDOW = 100  # messages handed to paho and not yet acknowledged, at most
QUEUE_BYTES = 64 * 1024 * 1024  # the queue's memory bound, whatever max_queued says
FLAP_S = 10.0  # a connection closed this soon after it opened counts as a clash
REPORT_S = 60.0  # a lasting problem is logged again this often
RETAINED_REPORTS = 20  # retained triggers logged per connection, at most (one line a topic)


class MqttLink:
    """One connection to the broker: subscribes to the trigger topic, publishes results.

    ``publish`` never blocks and never raises: the message joins a bounded queue that a sender
    thread hands to the broker while connected. ``status()`` reports the link for
    ``inspect station status``."""

    def __init__(
        self,
        opt: MqttOptions,
        station: str,
        log,
        on_trigger: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.opt, self.station, self.log, self.on_trigger = opt, station, log, on_trigger
        self.connected = False
        self.client_id = opt.client_id or f"inspect-{station}-{os.getpid()}"
        self.client = make_client(opt, self.client_id)
        self.client.max_inflight_messages_set(WINDOW)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self._closing = False
        self._event = threading.Event()  # the first attempt has an outcome
        self._cv = threading.Condition()
        self._out: collections.deque[tuple[str, str]] = collections.deque()
        self._out_bytes = 0
        self._inflight: set[int] = set()
        self._early: set[int] = set()  # acknowledged before publish() returned its mid
        self.dropped = self.delivered = 0
        self.down_since: float | None = time.time()
        self.last_error: str | None = None
        self._connected_at = 0.0
        self._ever_connected = False
        self._flaps = 0
        self._reported: dict[str, float] = {}
        self._retained: set[str] = set()  # topics of retained triggers logged this connection
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    # -- connection --------------------------------------------------------------------------
    def start(self, wait_s: float = 5.0) -> MqttLink:
        """Connect (waiting up to ``wait_s`` for the broker's answer), then keep reconnecting
        in the background. Returns at once when the broker cannot be reached."""
        o = self.opt
        try:
            self.client.connect(o.host, o.port, o.keepalive)
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            self.last_error = why_not(e, o)
            self.client.connect_async(o.host, o.port, o.keepalive)
            self._event.set()
        self.client.loop_start()
        self._sender.start()
        self._event.wait(wait_s)
        if not self.connected and "mqtt_refused" not in self._reported:
            self._report(
                "mqtt_unavailable",
                f"{self.last_error or 'MQTT broker not answering'}"
                "; the station inspects and records as usual, keeps trying, and "
                f"queues MQTT results (up to {o.max_queued})",
                error=True,
            )
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self.last_error = (
                f"MQTT broker {self.opt.host}:{self.opt.port} refused the "
                f"connection: {reason_code}; check mqtt.username and the "
                "password in the variable named by mqtt.password_env"
            )
            self._report("mqtt_refused", self.last_error, error=True)
            self._event.set()
            return
        with self._cv:
            self.connected = True
            back = self._ever_connected and self.down_since is not None
            waited = time.time() - self.down_since if back else 0.0
            self._ever_connected = True
            self.down_since, self.last_error = None, None
            self._connected_at = time.monotonic()
            queued = len(self._out) + len(self._inflight)
            self._cv.notify_all()
        self._retained.clear()
        if self.opt.trigger_topic and self.on_trigger is not None:
            client.subscribe(self.opt.trigger_topic, qos=self.opt.qos)
        for event in ("mqtt_unavailable", "mqtt_refused", "mqtt_dropped"):
            self._reported.pop(event, None)  # the next outage is reported afresh
        self.log.info(
            "mqtt_connected",
            f"MQTT connected to {self.opt.host}:{self.opt.port}"
            + (
                f", triggers on {self.opt.trigger_topic}"
                if self.opt.trigger_topic and self.on_trigger is not None
                else ""
            )
            + (f" again after {waited:.0f} s away" if back else "")
            + (f"; sending {queued} queued result(s)" if queued else "")
            + (
                f"; {self.dropped} older result(s) were dropped while it was away "
                "(the queue was full; they are in the database)"
                if self.dropped
                else ""
            ),
            queued=queued,
            dropped=self.dropped,
        )
        self._event.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = self.last_error or (
            f"MQTT broker {self.opt.host}:{self.opt.port} not reachable"
        )
        self._event.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._cv:
            was = self.connected
            self.connected = False
            if was:
                self.down_since = time.time()
        if self._closing:
            return
        where = f"MQTT broker {self.opt.host}:{self.opt.port}"
        if not was:  # closed before it answered the CONNECT
            self.last_error = self.last_error or (
                f"{where} closed the connection before accepting it (does it want TLS, "
                "mqtt.tls = true, or a login, mqtt.username?)"
            )
            self._event.set()
            return
        short = time.monotonic() - self._connected_at < FLAP_S
        self._flaps = self._flaps + 1 if short else 0
        if not short:
            self._reported.pop("mqtt_lost", None)
        self.last_error = f"connection to {where} lost ({reason_code})"
        if self._flaps >= 3:
            self.last_error += (
                f"; closed {self._flaps} times within seconds of connecting: is "
                f"another client using the client id {self.client_id!r}? Give "
                "every station its own mqtt.client_id (or leave it out)"
            )
            self._report("mqtt_client_id_clash", self.last_error, error=True)
        self._report("mqtt_lost", f"{self.last_error}; reconnecting, results are queued")

    def _report(self, event: str, msg: str, error: bool = False, **fields: Any) -> None:
        """Log ``event`` now, and again at most every REPORT_S while it lasts."""
        now = time.monotonic()
        if now - self._reported.get(event, -1e9) < REPORT_S:
            return
        self._reported[event] = now
        (self.log.error if error else self.log.warning)(event, msg, **fields)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.retain:  # kept by the broker and sent at every connect: not a new part
            self._ignore_retained(msg.topic)
            return
        if self.opt.result_topic and msg.topic == self.opt.result_topic:
            self._report(
                "trigger_loop",
                f"{msg.topic}: ignored a message on the result topic; mqtt.trigger_topic "
                f"{self.opt.trigger_topic!r} must not match the topic results go to",
                error=True,
            )
            return
        try:
            trig = parse_trigger(msg.payload)
        except TriggerError as e:
            self.log.error("bad_trigger", f"{msg.topic}: {e}")
            self.publish_error(e.request_id, str(e))
            return
        trig["received"] = time.monotonic()  # a camera takes the frame captured after it
        if self.on_trigger is not None:
            self.on_trigger(trig)

    def _ignore_retained(self, topic: str) -> None:
        """A retained trigger (a PLC's or an operator's ``mosquitto_pub -r``) is logged once per
        topic and connection, never acted on: it would record the old part again at every start
        and every reconnect."""
        if topic in self._retained or len(self._retained) >= RETAINED_REPORTS:
            return
        self._retained.add(topic)
        port = "" if self.opt.port == 1883 else f" -p {self.opt.port}"
        self.log.warning(
            "retained_trigger",
            f"{topic}: ignored a retained trigger message (the broker keeps it and sends it "
            "again at every connect; it is no new part). Send triggers without retain, and "
            f"clear this one: mosquitto_pub -h {self.opt.host}{port} -t '{topic}' -r -n",
            topic=topic,
        )

    # -- publishing --------------------------------------------------------------------------
    def publish(self, topic: str | None, message: dict[str, Any]) -> None:
        """Queue ``message`` for ``topic`` (strict JSON); drops the oldest when full."""
        if not topic:
            return
        payload = encode(message)
        with self._cv:
            self._out.append((topic, payload))
            self._out_bytes += len(payload)
            dropped = 0
            while len(self._out) > 1 and (
                len(self._out) > self.opt.max_queued or self._out_bytes > QUEUE_BYTES
            ):
                self._out_bytes -= len(self._out.popleft()[1])
                dropped += 1
            self.dropped += dropped
            self._cv.notify_all()
        if dropped:
            self._report(
                "mqtt_dropped",
                f"MQTT queue full ({self.opt.max_queued} results, "
                "mqtt.max_queued) while the broker is away: dropping the oldest "
                f"({self.dropped} so far); every result is still in the database",
            )

    def publish_result(self, insp: Inspection, request_id: Any = None) -> None:
        self.publish(self.opt.result_topic, result_message(insp, request_id))

    def publish_event(self, message: dict[str, Any]) -> None:
        """An alert of the station (``"event"``: e.g. ``input_drift``) on ``[mqtt] event_topic``
        (none: not published)."""
        self.publish(self.opt.event_topic, message)

    def publish_error(self, request_id: Any, reason: str, **extra: Any) -> None:
        self.publish(
            self.opt.result_topic,
            {
                "id": request_id,
                "station": self.station,
                "verdict": "ERROR",
                "error": reason,
                **extra,
            },
        )

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        if self.opt.qos == 0:
            return
        with self._cv:
            if mid in self._inflight:
                self._inflight.discard(mid)
                self.delivered += 1
            else:
                self._early.add(mid)
            self._cv.notify_all()

    def _send_loop(self) -> None:
        mqtt = paho()
        while True:
            with self._cv:
                while not self._closing and not (
                    self.connected and self._out and len(self._inflight) < WINDOW
                ):
                    self._cv.wait(0.5)
                if self._closing:
                    return
                topic, payload = self._out.popleft()
                self._out_bytes -= len(payload)
            info = self.client.publish(topic, payload, qos=self.opt.qos)
            with self._cv:
                if self.opt.qos == 0:
                    if info.rc == mqtt.MQTT_ERR_SUCCESS:
                        self.delivered += 1
                    else:  # not sent: the link dropped a moment ago
                        self._out.appendleft((topic, payload))
                        self._out_bytes += len(payload)
                elif info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    # paho keeps a QoS 1/2 message (also one taken as the link dropped) and
                    # sends it again after reconnecting, until the broker acknowledges it
                    if info.mid in self._early:
                        self._early.discard(info.mid)
                        self.delivered += 1
                    else:
                        self._inflight.add(info.mid)
                else:  # refused by paho (its own queue full): try again shortly
                    self._out.appendleft((topic, payload))
                    self._out_bytes += len(payload)
                    self._cv.wait(0.5)

    def status(self) -> dict[str, Any]:
        """For status.json: up or not, since when, why, and the results waiting or dropped."""
        with self._cv:
            return {
                "connected": self.connected,
                "down_since": self.down_since,
                "last_error": self.last_error,
                "queued": len(self._out) + len(self._inflight),
                "dropped": self.dropped,
                "delivered": self.delivered,
                "needs_action": not self.connected,
            }

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to ``timeout_s``, while connected), then disconnect."""
        end = time.monotonic() + timeout_s
        with self._cv:
            while self.connected and (self._out or self._inflight) and time.monotonic() < end:
                self._cv.wait(min(0.1, max(0.0, end - time.monotonic())))
            left = len(self._out) + len(self._inflight)
            self._closing = True
            self._cv.notify_all()
        if left and self.opt.result_topic:
            self.log.warning(
                "mqtt_undelivered",
                f"{left} MQTT result message(s) not delivered "
                f"to {self.opt.host}:{self.opt.port} before stopping; the results "
                "are recorded in the database",
                undelivered=left,
            )
        self.disconnect()
        if self._sender.is_alive():
            self._sender.join(2.0)

    def connect_now(self, timeout_s: float) -> None:
        """Connect and wait for the broker to accept, without the queue's sender (for a caller
        that publishes and waits for each acknowledgement itself); ConnectionError, in words,
        when it does not accept within ``timeout_s``."""
        o = self.opt
        try:
            self.client.connect(o.host, o.port, o.keepalive)
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise ConnectionError(why_not(e, o)) from None
        self.client.loop_start()
        if not self._event.wait(timeout_s) or not self.connected:
            self.client.loop_stop()
            raise ConnectionError(
                self.last_error
                or f"MQTT broker {o.host}:{o.port} did not answer within {timeout_s} s"
            )

    def disconnect(self) -> None:
        """Close the connection at once (what is queued stays unsent; see :meth:`close`)."""
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
