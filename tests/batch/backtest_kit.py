"""What the backtest tests share: the shipped steel model, a recorded history of the steel
samples with one operator decision (the ``history`` fixture in conftest.py), a backtest run
with the tests' defaults, and candidates made from the steel model with its prior moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from inspect_batch.run import run_backtest
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.model_file import edit_meta
from inspect_core.training.model_card import save_card
from inspect_db import Recorder

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"


def record_history(tmp: Path) -> tuple[str, list[str], Path]:
    """An archive of 9 steel images (the samples, mirrored and turned) recorded by the steel
    recipe as station line1, one of its PASS overturned by an operator: (database URL, the
    recorded verdicts, the folder)."""
    archive = tmp / "archive"
    archive.mkdir()
    for src in sorted((ROOT / "plugins/inspect_plugins/industrial/samples").glob("steel_*.png")):
        img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        for k, variant in enumerate((img, img[:, ::-1], img[::-1])):
            cv2.imwrite(str(archive / f"{src.stem}_{k}.png"), variant)
    url = f"sqlite:///{tmp / 'line.db'}"
    inspector = Inspector(find_recipe("industrial", "steel"))
    verdicts = []
    with Recorder(url) as rec:
        for p in sorted(archive.glob("*.png")):
            insp, _ = inspector.inspect_file(p, station="line1", plugin="industrial")
            rec.record(insp)
            verdicts.append(insp.verdict.decision.value)
    overturn_first_pass(url)  # every test sees the operator's one decision
    return url, verdicts, tmp


def overturn_first_pass(url: str) -> int:
    """An operator reviews the first PASS and decides FAIL; its inspection id."""
    import sqlalchemy as sa

    from inspect_db.engine import make_engine
    from inspect_review.storage.store import add_user, record_decision
    from inspect_review.storage.types import DecisionIn

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            iid = c.execute(sa.text("SELECT min(id) FROM inspection WHERE verdict = 'PASS'"))
            iid = int(iid.scalar_one())
        user = add_user(engine, "olga", "operator", "not-a-real-hash")
        record_decision(engine, DecisionIn(iid, user.id, "FAIL", ()))
    finally:
        engine.dispose()
    return iid


def run(url, candidate, tmp, **kw):
    """``run_backtest`` of industrial:steel with the tests' defaults (one worker, chunks of 2)."""
    args = dict(
        plugin="industrial",
        recipe="steel",
        candidate=candidate,
        sha256="",
        window=(None, None, None),
        url=url,
        scheduler=None,
        workers=1,
        chunk=2,
        path_maps=[],
        html=None,
        quiet=True,
    )
    args.update(kw)
    return run_backtest(**args)


def biased_steel(path: Path, class_bias: list[float]) -> Path:
    """The steel network with its prior moved by ``class_bias`` (background, then the defect
    classes), its card beside it: a background bias of -8 fails the passes, one of +30
    passes the fails."""
    shutil.copy(STEEL, path)
    edit_meta(path, lambda m: m.update(class_bias=class_bias))
    card = json.loads(STEEL.with_suffix(".json").read_text())
    save_card(card, path.with_suffix(".json"), path)
    return path


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    """(database URL, the recorded verdicts, the folder with ``archive/`` and ``line.db``),
    recorded once per session (recording takes seconds); read-only: a test that changes it
    copies it first. Test modules import it by name (no conftest.py here: a second module named
    ``conftest`` would shadow the suite's own for ``from conftest import ...``)."""
    return record_history(tmp_path_factory.mktemp("history"))
