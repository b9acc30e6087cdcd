"""Model cards as the runtime reads them: the check that a model file is the one its card
(``model.json`` beside it, written by training: :mod:`inspect_core.training.model_card`)
describes (:func:`verify_model`, run whenever a model loads; :func:`verify_variant` for the
files of its faster variants), the card reader that says what is wrong with a damaged card
(:func:`read_card`), and the file hashes they use.

A card is required (a missing one refuses the model) for a plugin's recipe and for a recipe that
names its card; a bare model (``inspect predict --model x.onnx``) without a card file loads with
a warning. A card file that exists but is damaged always refuses the model."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspect_core.errors import ModelError

# INSPECT_ALLOW_UNVERIFIED_MODELS=1 loads a model that does not match its card, or whose card is
# missing or damaged (development only: a model being edited by hand); each such load is logged
# as a warning.
ALLOW_UNVERIFIED_ENV = "INSPECT_ALLOW_UNVERIFIED_MODELS"
OVERRIDE_HINT = f"({ALLOW_UNVERIFIED_ENV}=1 loads it anyway, for development only)"
MAX_SMALL_FILE = 1 << 20  # cards and recipes: 1 MB is far beyond any real one
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
log = logging.getLogger("inspect.models")
_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256
_LOGGED: set[tuple[object, ...]] = set()  # what verify_model has already logged in this process
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_small_file(path: str | Path, limit: int = MAX_SMALL_FILE) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes. Opened
    without blocking and checked with fstat before any read, so a FIFO, a device (/dev/zero)
    or a directory is refused at once, never read until memory runs out or forever. Anything
    else is an :class:`OSError` whose ``strerror`` says what is wrong."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        _must_be_regular(st, path)
        chunks, size = [], 0
        while size <= limit and st.st_size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if st.st_size > limit or size > limit:
        size = max(st.st_size, size)
        raise OSError(errno.EFBIG, f"it is {size} bytes, over the {limit} allowed", str(path))
    return b"".join(chunks)


def _must_be_regular(st: os.stat_result, path: str | Path) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise OSError(errno.EINVAL, f"it is {kind}, not a regular file", str(path))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_cached(path: str | Path) -> str:
    """:func:`sha256_file`, computed once per process for a file of a given path, size and
    modification time (a station builds its inspector once; tools load a model several times).
    A path that is no regular file (a FIFO, a device) is an :class:`OSError`, never read."""
    p = Path(path).resolve()
    st = p.stat()
    _must_be_regular(st, p)
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = sha256_file(p)
        after = p.stat()
        if (after.st_size, after.st_mtime_ns) != key[1:]:
            return digest  # written to while read: not cached
        _HASHES[key] = digest
    return _HASHES[key]


class CardError(ModelError):
    """A model card that exists but cannot serve as one (unreadable, not a JSON object, no
    valid sha256), or a required card that is missing. The message names the file."""


@dataclass(frozen=True)
class ModelCheck:
    """What :func:`verify_model` found. ``card``: the card that vouches for the file (None when
    unverified); ``status``: "verified", "no_card", "mismatch_allowed" or
    "card_problem_allowed" (the last two: the override); ``note``: why it is unverified, for a
    warning."""

    sha256: str
    card: Path | None
    status: str
    note: str = ""


@dataclass(frozen=True)
class Card:
    """A model card as read once (:func:`verify_model_card`): where it is, and its JSON object
    (whose "sha256" is 64 lower-case hexadecimal characters). ``data`` is what training wrote
    (classes, validation scores, variants): the loader plans the variants from it, never
    reading the file again."""

    path: Path
    data: Mapping[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.data["sha256"])

    @property
    def classes(self) -> list[str] | None:
        """The model's classes as the card lists them; None when it lists none."""
        got = self.data.get("classes")
        return [str(c) for c in got] if isinstance(got, list) else None


def allow_unverified() -> bool:
    """Whether ``INSPECT_ALLOW_UNVERIFIED_MODELS=1`` (development only) is set."""
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip() == "1"


def read_card(card: Path) -> dict[str, Any]:
    """The card at ``card`` as a JSON object whose "sha256" is 64 hexadecimal characters
    (lower-cased here). Whatever else is there is a :class:`CardError` saying what is wrong."""
    try:
        data = json.loads(read_small_file(card).decode("utf-8"))
    except OSError as e:
        raise CardError(f"model card {card} cannot be read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise CardError(f"model card {card} is not UTF-8 text (byte {e.start})") from e
    except ValueError as e:
        raise CardError(f"model card {card} is not valid JSON ({e}): truncated or damaged") from e
    if not isinstance(data, dict):
        raise CardError(f"model card {card} is not a JSON object (it is a {type(data).__name__})")
    sha = data.get("sha256")
    if not isinstance(sha, str) or not SHA256_HEX.fullmatch(sha):
        got = "has no sha256" if "sha256" not in data else f'has "sha256": {json.dumps(sha)}'
        raise CardError(
            f"model card {card} {got}; it must hold the model file's sha256, 64 hexadecimal "
            "characters"
        )
    return {**data, "sha256": sha.lower()}


def card_fix(card: Path) -> str:
    """What to do about a missing or damaged card ``card``."""
    return (
        f"Restore {card.name} from its plugin's package (reinstall the plugin); for a model you "
        "trained, copy the model.json that inspect train wrote with it to "
        f"{card}"
    )


def verify_model(
    model: str | Path, card: str | Path | None = None, *, required: bool = False
) -> ModelCheck:
    """Check that ``model`` is the file its card (``card``, default the ``.json`` beside it)
    describes. A mismatch, or a card file that is there but damaged, is a :class:`ModelError`
    naming the file and what is wrong; so is a missing card when ``required`` (a plugin's
    recipe, a recipe that names its card). ``INSPECT_ALLOW_UNVERIFIED_MODELS=1`` turns each
    into a logged warning. A model without a card file that is not ``required`` loads
    (``status`` "no_card"; ``inspect predict`` and ``evaluate`` say so)."""
    return verify_model_card(model, card, required=required)[0]


def verify_model_card(
    model: str | Path, card: str | Path | None = None, *, required: bool = False
) -> tuple[ModelCheck, Card | None]:
    """:func:`verify_model`, and the :class:`Card` it read (None: no card file, or one that
    could not be read): one read of the card serves the check and the variants' plan
    (:mod:`inspect_core.runtime.loader`)."""
    model = Path(model)
    card = Path(card) if card else model.with_suffix(".json")
    try:
        actual = sha256_cached(model)
    except OSError as e:
        raise ModelError(f"{model}: cannot read the model file ({e.strerror or e})") from e
    if not os.path.lexists(card) and not required:
        note = (
            f"{model}: no model card ({card.name} with its sha256) beside it, so it is not "
            f"verified (sha256 {actual}); inspect train writes one (model.json)"
        )
        _log_once(
            logging.INFO, (model, actual, "no_card"), note, "model_unverified", model, None, actual
        )
        return ModelCheck(actual, None, "no_card", note), None
    try:
        if not os.path.lexists(card):
            raise CardError(f"model card {card} is missing")
        read = Card(card, read_card(card))
    except CardError as e:
        msg = f"{model} is not verified: {e}. {card_fix(card)}"
        return _allowed_or_raise(msg, model, actual, None, "card_problem_allowed"), None
    if read.sha256 == actual:
        return ModelCheck(actual, card, "verified"), read
    msg = (
        f"{model} does not match its model card {card}: the card says sha256 {read.sha256}, "
        f"the file has sha256 {actual}. The file changed after its card was written. "
        "Restore it from its plugin's package (reinstall the plugin), or, if the model was "
        "retrained or edited on purpose, copy the card written with it (model.json) or "
        "write the file's sha256 into the card"
    )
    return _allowed_or_raise(msg, model, actual, read.sha256, "mismatch_allowed"), read


def verify_variant(file: str | Path, expected: str, card: str | Path) -> ModelCheck:
    """Check a faster variant's file (``tile.int8.onnx``, written by training/variants.py)
    against the sha256 its card lists for it (``variants.list``): a file that does not match is
    refused like the model itself (a :class:`ModelError`; ``INSPECT_ALLOW_UNVERIFIED_MODELS=1``
    turns it into a logged warning)."""
    file, card = Path(file), Path(card)
    try:
        actual = sha256_cached(file)
    except OSError as e:
        raise ModelError(f"{file}: cannot read the variant file ({e.strerror or e})") from e
    if actual == expected.lower():
        return ModelCheck(actual, card, "verified")
    msg = (
        f"{file} does not match its model card {card}: the card's variants give it sha256 "
        f"{expected}, the file has sha256 {actual}. The file changed after training/variants.py "
        "wrote it. Restore it from its plugin's package (reinstall the plugin) or rerun "
        "training/variants.py on the model; INSPECT_VARIANT=fp32 runs the fp32 file meanwhile"
    )
    return _allowed_or_raise(msg, file, actual, expected, "mismatch_allowed")


def _allowed_or_raise(
    msg: str, model: Path, actual: str, expected: str | None, status: str
) -> ModelCheck:
    """With the override: a logged warning and an unverified :class:`ModelCheck`; else the
    :class:`ModelError`."""
    if not allow_unverified():
        raise ModelError(f"{msg}. {OVERRIDE_HINT}")
    note = f"{msg}. Loaded anyway: {ALLOW_UNVERIFIED_ENV}=1 (development only)"
    event = "model_mismatch_allowed" if expected else "model_card_problem_allowed"
    _log_once(logging.WARNING, (model, actual, status, msg), note, event, model, expected, actual)
    return ModelCheck(actual, None, status, note)


def _log_once(
    level: int,
    key: tuple[object, ...],
    msg: str,
    event: str,
    model: Path,
    expected: str | None,
    actual: str,
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
