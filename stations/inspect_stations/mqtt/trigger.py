"""MQTT messages in and out: a trigger checked at the edge, a result encoded as strict JSON.

A trigger is refused (answered with ``"verdict": "ERROR"`` naming the field) rather than
repaired when a field is of the wrong type, too long, or holds a control or invisible character
(Unicode Cc, Cf, Zl, Zp, Co, Cs: ``U+0000``, a zero-width space, a right-to-left override, a
line separator; the answer names it by code point): the part id and lot are traceability keys,
silently changing them (``"P\\u0000X"`` -> ``"PX"``) could record a different part than the PLC
meant, and ``"P-77"`` and ``"P-77\\u200b"`` would be two parts that look the same. Surrounding
spaces of ``part_id`` and ``lot`` are removed, and an empty one is no value. The answer never
repeats a refused value (it can be a megabyte), only its kind and length; it carries the
trigger's ``id`` when that one was fine.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from typing import Any

from inspect_core.types import NO_HEALTH, Inspection

MAX_TRIGGER_BYTES = 4096  # a trigger message longer than this is refused unread
MAX_ID_CHARS = 64  # a string id: echoed in every result and status.json, and part of the
#                   capture key "<id>@<time>#<frame>" (String(128) in db/inspect_db/models.py)
MAX_INT_ID = 2**63 - 1  # an integer id: a signed 64-bit PLC counter at most
MAX_FIELD_CHARS = 128  # part_id, lot: String(128) columns in db/inspect_db/models.py
EXAMPLE = '{"id": "A-1042", "part_id": "P-77", "lot": "L-5"}'


class TriggerError(ValueError):
    """A trigger that cannot be used; ``request_id`` is its id when that one was valid."""

    def __init__(self, message: str, request_id: str | int | None = None):
        super().__init__(message)
        self.request_id = request_id


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, float):
        return "a number that is not an integer" if math.isfinite(v) else "NaN or Infinity"
    return {
        dict: "an object",
        list: "a list",
        type(None): "null",
        str: "a string",
        int: "an integer",
    }.get(type(v), type(v).__name__)


# controls, format characters (bidi overrides, zero-width spaces, byte-order marks), line and
# paragraph separators, private use, lone surrogates: nothing a part id is typed or printed with
BAD_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})


def _bad_char(s: str) -> str | None:
    for i, ch in enumerate(s):
        if unicodedata.category(ch) in BAD_CATEGORIES:
            name = unicodedata.name(ch, "")
            return f"U+{ord(ch):04X}{' ' + name if name else ''} at position {i + 1}"
    return None


def _refuse_hidden(v: str, name: str) -> None:
    bad = _bad_char(v)
    if bad:
        raise TriggerError(
            f'trigger field "{name}" holds an invisible or control character ({bad}); '
            "send printable text only"
        )


def _text(v: str, name: str, limit: int) -> str:
    if len(v) > limit:
        raise TriggerError(
            f'trigger field "{name}" is {len(v)} characters long; at most {limit} are accepted'
        )
    _refuse_hidden(v, name)
    return v


def check_id(v: Any) -> str | int:
    """A request id: a non-empty string of at most MAX_ID_CHARS, or a 64-bit integer."""
    if isinstance(v, int) and not isinstance(v, bool):
        if abs(v) > MAX_INT_ID:
            raise TriggerError(
                'trigger field "id" is an integer beyond 64 bits; send a '
                f"string of at most {MAX_ID_CHARS} characters instead"
            )
        return v
    if not isinstance(v, str):
        raise TriggerError(
            f'trigger field "id" must be a string (at most {MAX_ID_CHARS} '
            f"characters) or an integer, got {_kind(v)}"
        )
    if not v:
        raise TriggerError(
            'trigger message has no "id"; the result is published with it, '
            'so send e.g. {"id": "A-1042"}'
        )
    return _text(v, "id", MAX_ID_CHARS)


def check_field(v: Any, name: str, request_id: str | int | None) -> str | None:
    """``part_id`` / ``lot``: text (an integer is taken as its digits), None when absent."""
    try:
        if v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise TriggerError(
                f'trigger field "{name}" must be a string or an integer, got {_kind(v)}'
            )
        # checked before the surrounding spaces go: str.strip() would also drop a trailing
        # control or separator character (U+0085, U+2028) that must refuse the trigger
        _refuse_hidden(v, name)
        return _text(v.strip(), name, MAX_FIELD_CHARS) or None
    except TriggerError as e:
        raise TriggerError(str(e), request_id) from None


def parse_trigger(payload: bytes) -> dict[str, Any]:
    """A trigger message -> {"id", "part_id", "lot"}; :class:`TriggerError` says what is wrong.

    The message is a JSON object (other keys are ignored), or a bare JSON string or integer
    taken as the id."""
    if len(payload) > MAX_TRIGGER_BYTES:
        raise TriggerError(
            f"trigger message is {len(payload)} bytes; at most "
            f"{MAX_TRIGGER_BYTES} are accepted (send e.g. {EXAMPLE})"
        )
    try:
        msg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        text = payload[:60].decode("utf-8", "replace")
        raise TriggerError(f"trigger message is not JSON ({text!r}); send e.g. {EXAMPLE}") from None
    if isinstance(msg, (str, int)) and not isinstance(msg, bool):
        return {"id": check_id(msg), "part_id": None, "lot": None}
    if not isinstance(msg, dict):
        raise TriggerError(
            f'trigger message must be a JSON object with an "id", got '
            f"{_kind(msg)}; send e.g. {EXAMPLE}"
        )
    if msg.get("id") is None:
        raise TriggerError(
            'trigger message has no "id"; the result is published with it, '
            'so send e.g. {"id": "A-1042"}'
        )
    rid = check_id(msg["id"])
    return {
        "id": rid,
        "part_id": check_field(msg.get("part_id"), "part_id", rid),
        "lot": check_field(msg.get("lot"), "lot", rid),
    }


# -- results --------------------------------------------------------------------------------
def result_message(insp: Inspection, request_id: Any = None) -> dict[str, Any]:
    """The result message of one inspection (regions without their polygons), with its input
    health: ``quality``, ``quality_problems``, ``familiarity``, ``unfamiliar``,
    ``health_flag``."""
    v = insp.verdict
    regions = []
    for r in v.regions:
        d = r.to_dict()
        d.pop("polygon", None)
        regions.append(d)
    return {
        "id": request_id if request_id is not None else os.path.basename(insp.source),
        "station": insp.station,
        "verdict": v.decision.value,
        "fired": [h.to_dict() for h in v.hits],
        "regions": regions,
        "part_id": insp.part_id,
        "lot": insp.lot,
        "image_sha256": insp.image_sha256,
        "source": insp.source,
        "error": insp.error,
        "inspected_at": insp.inspected_at,
        "latency_ms": round(insp.latency_ms, 1),
        # latency_ms split: working on this image, and waiting for the station's threads
        "inspect_ms": _ms(insp.inspect_ms),
        "queue_ms": _ms(insp.queue_ms),
        # the image's health (issue 25): quality figures, the limits broken, familiarity
        **(NO_HEALTH if insp.health is None else insp.health.to_dict()),
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def encode(message: dict[str, Any]) -> str:
    """Strict JSON (RFC 8259) for a PLC: NaN and Infinity, which ``json.dumps`` would write as
    bare words no other parser accepts, become null."""
    try:
        return json.dumps(message, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), default=str, allow_nan=False)
