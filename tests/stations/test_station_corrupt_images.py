"""Images that must be quarantined, never judged: cut short (even with an end marker appended),
damaged (bad CRC, truncated pixel data), or so large for the recipe that running the model
on them would hold the line for minutes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.plugin_api.interfaces import FileFacts, SourceItem
from inspect_stations.config.station import Limits, parse_config
from inspect_stations.inputs.image_check import BadImage, load_image
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink, write_images

RNG = np.random.default_rng(5)
PART = cv2.GaussianBlur(RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8), (5, 5), 0)


def _jpeg(img: np.ndarray, *params: int) -> bytes:
    return cv2.imencode(".jpg", img, list(params))[1].tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_parts(img: np.ndarray) -> tuple[bytes, bytes]:
    """(signature + IHDR, the zlib stream of the rows) of a gray image, to damage it."""
    h, w = img.shape
    raw = b"".join(b"\0" + img[r].tobytes() for r in range(h))
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    return head, zlib.compress(raw)


def _cut(data: bytes, keep: float = 0.3) -> bytes:
    return data[: int(len(data) * keep)]


GRAY = PART[..., 1]
_HEAD, _ZDATA = _png_parts(GRAY)
_IEND = _chunk(b"IEND", b"")
_PNG = cv2.imencode(".png", PART)[1].tobytes()


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)


def _bad_text_crc() -> bytes:
    text = _chunk(b"tEXt", b"Comment\0line 3")
    return _HEAD + _flip(text, len(text) - 1) + _chunk(b"IDAT", _ZDATA) + _IEND


CORRUPT = {
    # name: (bytes, words the reason must contain)
    "cut_eoi.jpg": (_cut(_jpeg(PART)) + b"\xff\xd9", "corrupt JPEG"),
    "cut_eoi_progressive.jpg": (
        _cut(_jpeg(PART, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)) + b"\xff\xd9",
        "corrupt JPEG",
    ),
    "cut_eoi_gray.jpg": (_cut(_jpeg(GRAY)) + b"\xff\xd9", "corrupt JPEG"),
    "cut_eoi_90.jpg": (_cut(_jpeg(PART), 0.9) + b"\xff\xd9", "corrupt JPEG"),
    "cut_iend.png": (_cut(_PNG) + _IEND, "PNG"),
    "idat_crc.png": (_flip(_PNG, _PNG.find(b"IDAT") + 20), "CRC"),
    "idat_short.png": (_HEAD + _chunk(b"IDAT", _cut(_ZDATA)) + _IEND, "PNG"),
    "idat_few_rows.png": (_HEAD + _chunk(b"IDAT", zlib.compress(b"\0" * 161 * 30)) + _IEND, "PNG"),
    "text_crc.png": (_bad_text_crc(), "CRC"),
}
INTACT = {
    "part.jpg": _jpeg(PART),
    "part_progressive.jpg": _jpeg(PART, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    "part_gray.jpg": _jpeg(GRAY),
    "part_444.jpg": _jpeg(
        PART, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
    ),
    "part.png": _PNG,
    "rows.png": _HEAD + _chunk(b"IDAT", _ZDATA[:50]) + _chunk(b"IDAT", _ZDATA[50:]) + _IEND,
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_damaged_image_is_refused(name):
    data, words = CORRUPT[name]
    with pytest.raises(BadImage, match=words):
        load_image(data, Path(name).suffix, Limits())


@pytest.mark.parametrize("name", sorted(INTACT))
def test_an_intact_image_decodes_to_the_same_pixels_as_before(name):
    data = INTACT[name]
    ref = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if ref.ndim == 3:
        ref = cv2.cvtColor(ref, cv2.COLOR_BGR2RGB)
    assert np.array_equal(load_image(data, Path(name).suffix, Limits()), ref)


def test_damaged_images_are_quarantined_and_never_judged(tmp_path):
    inbox = tmp_path / "inbox"
    good = write_images(inbox, 2, seed=3)
    for name, (data, _) in CORRUPT.items():
        (inbox / name).write_bytes(data)
    for name, data in INTACT.items():
        (inbox / name).write_bytes(data)
    cfg = parse_config(
        {
            "station": {"name": "corrupt", "plugin": "x", "recipe": "x", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
        },
        tmp_path,
    )
    sink = MemorySink()
    assert (
        Station(cfg, inspector=FakeInspector(), sinks={"db": sink}).run(install_signals=False) == 0
    )
    by_name = {Path(i.source).name: i for i in sink.items}
    for name, (_, words) in CORRUPT.items():
        assert by_name[name].verdict.decision.value == "ERROR", name
        assert words in by_name[name].error, f"{name}: {by_name[name].error}"
    for name in set(INTACT) | {p.name for p in good}:
        assert by_name[name].verdict.decision.value == "PASS", name
    q = next((tmp_path / "quarantine").iterdir())
    assert {p.name for p in q.iterdir() if not p.name.endswith(".why.txt")} == set(CORRUPT)


# -- work per image --------------------------------------------------------------------------
class _TiledMeta:
    tile = 512
    tile_size = 0
    stride = 32
    channels = 1
    tta = ("h", "v", "hv")


class TiledInspector(FakeInspector):
    """A stand-in with the tiling and test-time copies of the shipped tile recipe."""

    def __init__(self):
        super().__init__()
        self.meta = _TiledMeta
        self.calls = 0

    def judge(self, frame, seg):
        self.calls += 1
        return super().judge(frame, seg)


def _zeros_png(side: int) -> bytes:
    return cv2.imencode(".png", np.zeros((side, side), np.uint8))[1].tobytes()  # ~58 kB


def test_work_is_counted_from_the_header_in_tiles_and_copies():
    from inspect_stations.inputs.image_check import Header
    from inspect_stations.inputs.work_limit import WorkShape, check_work

    shape = WorkShape(recipe="tile", tile=512, overlap=0.25, stride=32, copies=4, budget_mpx=64.0)
    check_work(Header("png", 2000, 2000), shape)  # 25 tiles x 4 copies: 26 M, fine
    with pytest.raises(BadImage) as e:
        check_work(Header("png", 7000, 7000), shape)
    msg = str(e.value)
    assert "324 tiles of 512x512" in msg and "4 copies" in msg and "limits.max_work_mpx" in msg
    assert "up to about" in msg  # the largest image this recipe takes at this budget
    check_work(Header("png", 7000, 7000), WorkShape("tile", 512, 0.25, 32, 4, budget_mpx=400))
    # a recipe that scales images down first counts the work on the scaled image
    small = WorkShape("driving", 512, 0.25, 32, 2, budget_mpx=64.0, resizes=((480, 0),))
    check_work(Header("png", 7000, 7000), small)


def test_too_much_work_is_refused_before_decoding(tmp_path, monkeypatch):
    import inspect_stations.pipeline.work as work

    path = tmp_path / "blank.png"
    path.write_bytes(_zeros_png(7000))
    decoded = []
    monkeypatch.setattr(work, "decode", lambda *a: decoded.append(1))
    st = path.stat()
    item = SourceItem(source=str(path), path=str(path), file=FileFacts(st.st_size, st.st_mtime_ns))
    w = work.read_file(item, Limits(), shape=work.work_shape(TiledInspector(), Limits()))
    assert decoded == [] and w.image is None
    assert "limits.max_work_mpx" in w.error and "7000x7000" in w.error


def test_a_7000x7000_blank_png_is_quarantined_without_running_the_model(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "blank.png").write_bytes(_zeros_png(7000))
    write_images(inbox, 1, seed=9)
    cfg = parse_config(
        {
            "station": {"name": "work", "plugin": "x", "recipe": "x", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
        },
        tmp_path,
    )
    sink = MemorySink()
    inspector = TiledInspector()
    assert Station(cfg, inspector=inspector, sinks={"db": sink}).run(install_signals=False) == 0
    by_name = {Path(i.source).name: i for i in sink.items}
    assert by_name["img00000.png"].verdict.decision.value == "PASS"
    blank = by_name["blank.png"]
    assert blank.verdict.decision.value == "ERROR" and "limits.max_work_mpx" in blank.error
    assert inspector.calls == 1  # only the small image reached the model
    q = next((tmp_path / "quarantine").iterdir())
    assert "324 tiles" in (q / "blank.png.why.txt").read_text()


def test_the_work_limit_is_raised_in_the_station_config(tmp_path):
    from inspect_stations.inputs.image_check import Header
    from inspect_stations.inputs.work_limit import check_work
    from inspect_stations.pipeline.work import work_shape

    cfg = parse_config(
        {
            "station": {"name": "work", "plugin": "x", "recipe": "x"},
            "source": {"type": "folder", "path": "inbox"},
            "limits": {"max_work_mpx": 400},
        },
        tmp_path,
    )
    shape = work_shape(TiledInspector(), cfg.limits)
    assert shape.budget_mpx == 400 and shape.copies == 4 and shape.tile == 512
    check_work(Header("png", 7000, 7000), shape)  # 340 M: within the raised limit
