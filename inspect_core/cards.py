"""Model cards as the runtime reads them: the check that a model file is the one its card
(``model.json`` beside it, written by training: :mod:`inspect_core.training.model_card`)
describes (:func:`verify_model`, run whenever a model loads), and the file hashes it uses."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from inspect_core.errors import ModelError

# INSPECT_ALLOW_UNVERIFIED_MODELS=1 loads a model that does not match its card (development
# only: a model being edited by hand); each such load is logged as a warning.
ALLOW_UNVERIFIED_ENV = "INSPECT_ALLOW_UNVERIFIED_MODELS"
log = logging.getLogger("inspect.models")
_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256
_LOGGED: set[tuple] = set()  # what verify_model has already logged in this process


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_cached(path: str | Path) -> str:
    """:func:`sha256_file`, computed once per process for a file of a given path, size and
    modification time (a station builds its inspector once; tools load a model several times)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = sha256_file(p)
        after = p.stat()
        if (after.st_size, after.st_mtime_ns) != key[1:]:
            return digest  # written to while read: not cached
        _HASHES[key] = digest
    return _HASHES[key]


@dataclass(frozen=True)
class ModelCheck:
    """What :func:`verify_model` found. ``card``: the card that vouches for the file (None when
    unverified); ``status``: "verified", "no_card" or "mismatch_allowed" (the override);
    ``note``: why it is unverified, for a warning."""

    sha256: str
    card: Path | None
    status: str
    note: str = ""


def card_sha256(card: Path) -> str | None:
    """The sha256 a card vouches for; None when ``card`` is no card (missing, not a JSON object,
    no "sha256": a file that merely shares the model's name never stops an inspection)."""
    try:
        data = json.loads(card.read_text())
    except (OSError, ValueError):
        return None
    sha = data.get("sha256") if isinstance(data, dict) else None
    return sha.lower() if isinstance(sha, str) and sha else None


def verify_model(model: str | Path, card: str | Path | None = None) -> ModelCheck:
    """Check that ``model`` is the file its card (``card``, default the ``.json`` beside it)
    describes. A mismatch is a :class:`ModelError` naming the file and both hashes, unless
    ``INSPECT_ALLOW_UNVERIFIED_MODELS=1`` (then a logged warning). A model without a card loads
    (``status`` "no_card"; ``inspect predict`` and ``evaluate`` say so)."""
    model = Path(model)
    card = Path(card) if card else model.with_suffix(".json")
    try:
        actual = sha256_cached(model)
    except OSError as e:
        raise ModelError(f"{model}: cannot read the model file ({e.strerror or e})") from e
    expected = card_sha256(card)
    if expected is None:
        note = (
            f"{model}: no model card ({card.name} with its sha256) beside it, so it is not "
            f"verified (sha256 {actual}); inspect train writes one (model.json)"
        )
        _log_once(
            logging.INFO, (model, actual, "no_card"), note, "model_unverified", model, None, actual
        )
        return ModelCheck(actual, None, "no_card", note)
    if expected == actual:
        return ModelCheck(actual, card, "verified")
    msg = (
        f"{model} does not match its model card {card}: the card says sha256 {expected}, "
        f"the file has sha256 {actual}. The file changed after its card was written. "
        "Restore it from its plugin's package (reinstall the plugin), or, if the model was "
        "retrained or edited on purpose, copy the card written with it (model.json) or "
        "write the file's sha256 into the card"
    )
    if os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip() == "1":
        note = f"{msg}. Loaded anyway: {ALLOW_UNVERIFIED_ENV}=1 (development only)"
        _log_once(
            logging.WARNING,
            (model, actual, expected),
            note,
            "model_mismatch_allowed",
            model,
            expected,
            actual,
        )
        return ModelCheck(actual, None, "mismatch_allowed", note)
    raise ModelError(f"{msg}. ({ALLOW_UNVERIFIED_ENV}=1 loads it anyway, for development only)")


def _log_once(
    level: int, key: tuple, msg: str, event: str, model: Path, expected: str | None, actual: str
) -> None:
    if key in _LOGGED:
        return
    _LOGGED.add(key)
    log.log(
        level,
        msg,
        extra={
            "event": event,
            "fields": {"model": str(model), "card_sha256": expected, "file_sha256": actual},
        },
    )
