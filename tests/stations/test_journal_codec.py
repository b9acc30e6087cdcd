"""The journal's one JSON form of an inspection, and journals written before it (issue 23)."""

from __future__ import annotations

import json

from inspect_core.types import Decision, Inspection, Region, RuleHit, Verdict
from inspect_stations.pipeline.journal_codec import decode, encode

# written by the station before issue 23 (journal_codec.encode at 3016f17): the verdict nested as
# ``decision`` / ``hits``, every number exact
OLD_FAIL = (
    '{"source":"/inbox/Pr\\u00fcfteil 7.png","image_sha256":"'
    + "ab" * 32
    + '","width":640,"height":480,"verdict":{"decision":"FAIL","hits":[{"rule":"max_area",'
    '"decision":"FAIL","message":"scratch 97 px > 50 px","regions":[0]}],"regions":[{"class_id"'
    ':1,"class_name":"scratch","bbox":[10,20,30,4],"area_px":97,"centroid":[24.123456,'
    '21.987654],"max_prob":0.912345678,"mean_prob":0.71234567,"polygon":[[10,20],[40,20],'
    '[40,24]],"area_mm2":0.0123}],"coverage":{"scratch":0.0012345678}},"station":"line-3",'
    '"plugin":"industrial","recipe":"steel","model_sha256":"'
    + "cd"
    * 32
    + '","model_card":"/models/card.json","thresholds":{"scratch":{"max_area_px":50}},'
    '"captured_at":1764000000.25,"inspected_at":1764000000.5,"latency_ms":12.5,"inspect_ms":'
    '9.25,"queue_ms":3.25,"part_id":"P-1","lot":"L-9","error":null,"overlay_path":"/out/o.png",'
    '"capture_id":"t1@2025#0","replaces":null}'
)
OLD_ERROR = (
    '{"source":"/inbox/x.png","image_sha256":"","width":0,"height":0,"verdict":{"decision":'
    '"ERROR","hits":[],"regions":[],"coverage":{}},"station":"s","plugin":"","recipe":"",'
    '"model_sha256":"","model_card":null,"thresholds":{},"captured_at":null,"inspected_at":null,'
    '"latency_ms":0.0,"inspect_ms":null,"queue_ms":null,"part_id":null,"lot":null,"error":'
    '"cannot read","overlay_path":null,"capture_id":null,"replaces":"k"}'
)


def _fail() -> Inspection:
    region = Region(
        1,
        "scratch",
        (10, 20, 30, 4),
        97,
        (24.123456, 21.987654),
        0.912345678,
        0.71234567,
        [(10, 20), (40, 20), (40, 24)],
        0.0123,
    )
    hit = RuleHit("max_area", Decision.FAIL, "scratch 97 px > 50 px", [0])
    return Inspection(
        "/inbox/Prüfteil 7.png",
        "ab" * 32,
        640,
        480,
        Verdict(Decision.FAIL, [hit], [region], {"scratch": 0.0012345678}),
        station="line-3",
        plugin="industrial",
        recipe="steel",
        model_sha256="cd" * 32,
        model_card="/models/card.json",
        thresholds={"scratch": {"max_area_px": 50}},
        captured_at=1764000000.25,
        inspected_at=1764000000.5,
        latency_ms=12.5,
        inspect_ms=9.25,
        queue_ms=3.25,
        part_id="P-1",
        lot="L-9",
        overlay_path="/out/o.png",
        capture_id="t1@2025#0",
    )


def test_a_journal_entry_written_before_issue_23_loads() -> None:
    assert decode(OLD_FAIL) == _fail()
    err = decode(OLD_ERROR)
    assert err.verdict == Verdict(Decision.ERROR)
    assert (err.error, err.replaces, err.station) == ("cannot read", "k", "s")


def test_the_journal_writes_the_one_json_form_exact() -> None:
    insp = _fail()
    stored = json.loads(encode(insp))
    printed = insp.to_dict()
    assert stored.keys() == printed.keys()  # the same form as predict --json, MQTT, jsonl
    assert stored["verdict"] == "FAIL" and stored["fired"][0]["rule"] == "max_area"
    assert stored["regions"][0]["max_prob"] == 0.912345678  # exact in the journal ...
    assert printed["regions"][0]["max_prob"] == 0.9123  # ... rounded where printed
    assert decode(encode(insp)) == insp


def test_the_printed_form_reads_back_and_unknown_keys_are_left_out() -> None:
    insp = _fail()
    d = insp.to_dict()
    d["added_by_a_later_version"] = 1
    back = Inspection.from_dict(d)
    assert back.verdict.hits == insp.verdict.hits and back.source == insp.source
    assert back.verdict.regions[0].centroid == (24.12, 21.99)
