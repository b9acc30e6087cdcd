"""How the journal stores a result and a file name.

A result (:class:`~inspect_core.types.Inspection`) is stored as JSON (:func:`encode`,
:func:`decode`); every field comes back. JSON escapes what is not ASCII, so a name that is not
valid UTF-8 survives too.

File names are stored losslessly (:func:`stored`, :func:`loaded`): a name that is valid UTF-8
as text, as it always was; one that is not (``Pr\\xfcfteil.png`` from a Latin-1 writer on an
SMB share, which Python holds as a string with surrogate escapes, and SQLite text cannot hold)
as a BLOB of its bytes, so the file it names can still be found, compared and moved.
"""

from __future__ import annotations

import dataclasses
import json

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict


def stored(text: str | None) -> str | bytes | None:
    """``text`` as the journal stores it: itself, or a BLOB when it is not valid UTF-8."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def loaded(value: str | bytes | None) -> str | None:
    """A value :func:`stored` wrote, as the string it was."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return value


def encode(insp: Inspection) -> str:
    """JSON of every field (faster than dataclasses.asdict, which deep-copies everything)."""
    d = dict(insp.__dict__)
    v = insp.verdict
    d["verdict"] = {
        "decision": v.decision.value,
        "hits": [
            {
                "rule": h.rule,
                "decision": h.decision.value,
                "message": h.message,
                "regions": h.regions,
            }
            for h in v.hits
        ],
        "regions": [r.__dict__ for r in v.regions],
        "coverage": v.coverage,
    }
    return json.dumps(d, default=str, separators=(",", ":"))


def decode(payload: str) -> Inspection:
    d = json.loads(payload)
    v = d.pop("verdict")
    verdict = Verdict(
        Decision(v["decision"]),
        [
            RuleHit(h["rule"], Decision(h["decision"]), h["message"], list(h["regions"]))
            for h in v["hits"]
        ],
        [Region.from_dict(r) for r in v["regions"]],
        dict(v.get("coverage", {})),
    )
    known = {f.name for f in dataclasses.fields(Inspection)}
    return Inspection(verdict=verdict, **{k: val for k, val in d.items() if k in known})
