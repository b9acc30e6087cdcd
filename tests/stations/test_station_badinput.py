"""Bad input: each file is moved to quarantine/ with an ERROR record saying why, and the station
carries on with the good images around it."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import Limits, parse_config
from inspect_stations.inputs.image_check import BadImage, check_bytes, load_image, read_header
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import MemorySink, write_images


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header announcing width x height over a tiny (bogus) body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda t, d: (
        struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


RNG = np.random.default_rng(7)
GRAY = RNG.integers(0, 256, (40, 56), dtype=np.uint8)
COLOUR = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)


def test_headers_give_dimensions_without_decoding():
    assert (read_header(_png(GRAY)).width, read_header(_png(GRAY)).height) == (56, 40)
    h = read_header(_jpeg(COLOUR))
    assert (h.format, h.width, h.height) == ("jpeg", 56, 40)
    ok, bmp = cv2.imencode(".bmp", COLOUR)
    ok2, tif = cv2.imencode(".tif", GRAY)
    assert (read_header(bmp.tobytes()).width, read_header(tif.tobytes()).height) == (56, 40)
    assert read_header(_png(GRAY.astype(np.uint16) * 257)).bit_depth == 16


def test_a_decompression_bomb_is_refused_before_decoding(monkeypatch):
    import inspect_stations.inputs.image_check as v

    calls = []
    monkeypatch.setattr(v.cv2, "imdecode", lambda *a: calls.append(1))
    with pytest.raises(BadImage, match="too many pixels: 100000x100000"):
        load_image(_bomb_png(100_000, 100_000), ".png", Limits())
    assert calls == []


def test_conversions_where_sensible():
    lim = Limits(sixteen_bit="scale")
    rgba = np.dstack([COLOUR, np.full(GRAY.shape, 255, np.uint8)])
    assert load_image(_png(rgba), ".png", lim).shape == (40, 56, 3)
    assert load_image(_png(np.dstack([GRAY] * 3)), ".png", lim).shape == (40, 56)  # gray as RGB
    out16 = load_image(_png(GRAY.astype(np.uint16) * 257), ".png", lim)
    assert out16.dtype == np.uint8 and np.array_equal(out16, GRAY)


BAD = {
    # name: (bytes or a callable(folder) that makes the file, words the reason must contain)
    "empty.png": (b"", "empty (0 bytes)"),
    "cut.png": (_png(COLOUR)[:-200], "truncated PNG"),
    "cut.jpg": (_jpeg(COLOUR)[:600], "truncated JPEG"),
    "notes.png": (b"shift report: line 3 stopped at 10:42\n" * 4, "not an image"),
    "readme.txt": (b"not for the station\n", "extension '.txt'"),
    "photo.jpg": (_png(GRAY[::-1]), "wrong extension"),
    "huge.png": (_png(np.zeros((1100, 1000), np.uint8)), "too many pixels"),
    "bomb.png": (_bomb_png(50_000, 50_000), "refused before decoding"),
    "deep.png": (_png(GRAY.astype(np.uint16) * 200), "16-bit"),
    "glass.png": (
        _png(np.dstack([COLOUR, np.where(GRAY > 128, 255, 0).astype(np.uint8)])),
        "transparent pixels",
    ),
}
GOOD = {  # converted where sensible: inspected, not refused
    "colour.png": _png(COLOUR),  # the tiny model is gray: RGB -> gray
    "opaque.png": _png(np.dstack([COLOUR, np.full(GRAY.shape, 255, np.uint8)])),  # RGBA -> RGB
    "gray.jpg": _jpeg(GRAY),
    "scan.bmp": cv2.imencode(".bmp", COLOUR)[1].tobytes(),
    "scan.tif": cv2.imencode(".tif", GRAY)[1].tobytes(),
}


def test_each_bad_input_is_quarantined_with_the_reason_and_the_station_carries_on(
    tmp_path, tiny_model
):
    inbox = tmp_path / "inbox"
    good = write_images(inbox, 6, seed=11)
    for name, (data, _) in BAD.items():
        (inbox / name).write_bytes(data)
    for name, data in GOOD.items():
        (inbox / name).write_bytes(data)
    outside = tmp_path / "elsewhere" / "secret.png"
    outside.parent.mkdir()
    outside.write_bytes(_png(GRAY))
    os.symlink(outside, inbox / "link_out.png")
    os.symlink(tmp_path / "nowhere.png", inbox / "dangling.png")
    os.symlink(inbox / "img00000.png", inbox / "link_in.png")  # inside the folder: fine

    cfg = parse_config(
        {
            "station": {"name": "bad", "plugin": "tiny", "recipe": "tiny", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "limits": {"max_pixels": 1_000_000},
        },
        tmp_path,
    )
    sink = MemorySink()
    recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
    assert Station(cfg, recipe=recipe, sinks={"db": sink}).run(install_signals=False) == 0

    by_name = {}
    for i in sink.items:
        by_name[Path(i.source).name] = i
    errors = {n: i.error for n, i in by_name.items() if i.verdict.decision.value == "ERROR"}
    refused = set(BAD) | {"link_out.png", "dangling.png"}
    assert set(errors) == refused, f"unexpected refusals: {set(errors) ^ refused}"
    for name, (_, words) in BAD.items():
        assert words in errors[name], f"{name}: {errors[name]}"
    assert "outside the watched folder" in errors["link_out.png"]
    assert "broken symlink" in errors["dangling.png"]
    inspected = {p.name for p in good} | set(GOOD)
    # link_in.png has the bytes of img00000.png: same sha256, so one record for both files
    assert ("img00000.png" in by_name) != ("link_in.png" in by_name)
    for name in inspected - {"img00000.png"}:
        assert by_name[name].verdict.decision.value in ("PASS", "FAIL", "REVIEW"), name
    assert len(sink.items) == len(refused) + len(inspected)

    assert not list(inbox.iterdir()), "the inbox must be empty"
    q = next((tmp_path / "quarantine").iterdir())
    quarantined = {p.name for p in q.iterdir() if not p.name.endswith(".why.txt")}
    assert quarantined == refused
    why = (q / "bomb.png.why.txt").read_text()
    assert "too many pixels" in why and "originally:" in why
    assert (q / "link_out.png").is_symlink() and outside.exists()  # the target is not touched
    archived = {p.name for p in (tmp_path / "archive").rglob("*") if p.is_file() or p.is_symlink()}
    assert archived == inspected | {"link_in.png"}


def test_sixteen_bit_is_scaled_when_configured(tmp_path, tiny_model):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "deep.png").write_bytes(_png(GRAY.astype(np.uint16) * 257))
    cfg = parse_config(
        {
            "station": {"name": "deep", "plugin": "tiny", "recipe": "tiny", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "limits": {"sixteen_bit": "scale"},
        },
        tmp_path,
    )
    sink = MemorySink()
    recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
    assert Station(cfg, recipe=recipe, sinks={"db": sink}).run(install_signals=False) == 0
    assert [i.verdict.decision.value != "ERROR" for i in sink.items] == [True]
    assert sink.items[0].width == 56


def test_a_12_bit_camera_is_scaled_by_its_bits_and_more_bits_are_refused():
    img12 = (GRAY.astype(np.uint16) * 16).clip(0, 4095)  # a 12-bit camera's range
    out = load_image(_png(img12), ".png", Limits(sixteen_bit="12"))
    assert out.dtype == np.uint8 and np.abs(out.astype(int) - GRAY).max() <= 1
    # "scale" alone reads them as 16-bit: nearly black (why the camera's bits are a setting)
    assert load_image(_png(img12), ".png", Limits(sixteen_bit="scale")).max() <= 16
    with pytest.raises(BadImage, match='above 4095, the 12-bit range limits.sixteen_bit = "12"'):
        load_image(_png(GRAY.astype(np.uint16) * 257), ".png", Limits(sixteen_bit="12"))


def test_check_bytes_messages_name_the_fix():
    with pytest.raises(BadImage, match="limits.sixteen_bit"):
        check_bytes(_png(GRAY.astype(np.uint16) * 3), ".png", Limits())
    with pytest.raises(BadImage, match="rename"):
        check_bytes(_jpeg(GRAY), ".png", Limits())


def test_a_repeated_bad_file_keeps_its_reason(tmp_path):
    """Every empty file has the same sha256: the second is recorded once (as the first), but its
    .why.txt must still say why, not 'could not be inspected'."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = parse_config(
        {
            "station": {"name": "bad", "plugin": "x", "recipe": "x", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
        },
        tmp_path,
    )
    from inspect_stations.testing import FakeInspector

    sink = MemorySink()
    for name in ("first.png", "second.png"):
        (inbox / name).write_bytes(b"")
        assert (
            Station(cfg, inspector=FakeInspector(), sinks={"db": sink}).run(install_signals=False)
            == 0
        )
    assert len(sink.items) == 1 and "empty (0 bytes)" in sink.items[0].error
    q = next((tmp_path / "quarantine").iterdir())
    assert "empty (0 bytes)" in (q / "second.png.why.txt").read_text()


def test_unreadable_files_reusing_a_name_are_not_taken_for_one_another(tmp_path, monkeypatch):
    """No content to hash: the key must not be the path alone, or a camera that reuses one
    name would have its next unreadable file 'already recorded' and never recorded."""
    import inspect_stations.pipeline.work as work
    from inspect_core.plugin_api.interfaces import FileFacts, SourceItem

    p = tmp_path / "image.png"
    p.write_bytes(b"x")

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(work, "open_regular", refuse)
    keys = set()
    for mtime in (1, 2):
        item = SourceItem(source=str(p), path=str(p), file=FileFacts(1, mtime))
        w = work.read_file(item, Limits())
        assert "check the permissions" in w.error
        keys.add(w.sha256)
    assert len(keys) == 2


def test_a_huge_sparse_file_is_refused_from_its_size_without_being_read(tmp_path, monkeypatch):
    """An 8 GB sparse file (``truncate -s 8G``) used to be hashed whole before it was refused
    for limits.max_bytes: half a minute of a stalled line (a 1 TB one, a quarter of an hour)."""
    import inspect_stations.pipeline.work as work
    from inspect_stations.testing import FakeInspector

    opened, real_open = [], work.open_regular

    def watch(path, *a, **k):
        opened.append(os.path.basename(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(work, "open_regular", watch)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with open(inbox / "a_huge.png", "wb") as f:
        f.truncate(8 << 30)
    write_images(inbox, 1, seed=91, prefix="b_part")
    cfg = parse_config(
        {
            "station": {"name": "huge", "plugin": "x", "recipe": "x", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
        },
        tmp_path,
    )
    sink = MemorySink()
    assert (
        Station(cfg, inspector=FakeInspector(), sinks={"db": sink}).run(install_signals=False) == 0
    )
    assert "a_huge.png" not in opened and "b_part00000.png" in opened
    by_name = {Path(i.source).name: i for i in sink.items}
    assert "limits.max_bytes" in by_name["a_huge.png"].error
    assert by_name["b_part00000.png"].verdict.decision.value == "PASS"
    assert [p.name for p in (tmp_path / "quarantine").rglob("a_huge.png")] == ["a_huge.png"]
