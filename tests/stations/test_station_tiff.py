"""TIFF and PNG files a station must judge correctly or refuse: a TIFF strip cut short (its byte
count fixed to match, which libtiff decodes with the missing rows black), a strip or tile past
the end of the file, a multi-page TIFF (judged on page 1 only), a compression not checked; a
complete PNG with data after its IEND chunk is an image like any other."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from station_kit import folder_config

from inspect_stations.config.station import Limits
from inspect_stations.inputs.image_check import BadImage, load_image, read_header
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink

IMG = np.random.default_rng(7).integers(0, 256, (100, 64), dtype=np.uint8)
LZW, DEFLATE, PACKBITS = 5, 8, 32773


def _strip(img: np.ndarray, compression: int) -> tuple[bytes, int]:
    """OpenCV's single strip of ``img`` (under 8 KB a strip: one strip) with ``compression``,
    and its predictor (OpenCV writes differences of neighbours before LZW and Deflate)."""
    data = cv2.imencode(".tif", img, [cv2.IMWRITE_TIFF_COMPRESSION, compression])[1].tobytes()
    (ifd,) = struct.unpack("<I", data[4:8])
    tags = {}
    for k in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        tag, typ, count, value = struct.unpack("<HHII", data[ifd + 2 + 12 * k : ifd + 14 + 12 * k])
        tags[tag] = (value & 0xFFFF if typ == 3 else value, count)
    assert tags[273][1] == 1, "more than one strip"
    return data[tags[273][0] : tags[273][0] + tags[279][0]], tags.get(317, (1, 1))[0]


def _tiff(pages: list[dict], loop: bool = False) -> bytes:
    """A little-endian gray 8-bit TIFF, IFDs after the data. A page: ``strips`` (bytes),
    ``w``, ``h``, ``rows`` per strip, ``compression``, ``predictor``, ``subfile`` (254),
    ``counts`` (instead of the strips' lengths), ``tile`` (w, h: the strips are tiles)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    links, ifds = [4], []
    for p in pages:
        offsets = []
        for s in p["strips"]:
            offsets.append(len(out))
            out += s
        counts = p.get("counts") or [len(s) for s in p["strips"]]
        arrays = {}
        for tag, values in ((273, offsets), (279, counts)):
            if len(values) > 1:
                arrays[tag] = len(out)
                out += struct.pack(f"<{len(values)}I", *values)
        entries = {256: (4, 1, p["w"]), 257: (4, 1, p["h"]), 258: (3, 1, 8)}
        entries |= {259: (3, 1, p.get("compression", 1)), 262: (3, 1, 1), 277: (3, 1, 1)}
        if p.get("predictor", 1) != 1:
            entries[317] = (3, 1, p["predictor"])
        if p.get("subfile"):
            entries[254] = (4, 1, p["subfile"])
        so, sc = (324, 325) if p.get("tile") else (273, 279)
        if p.get("tile"):
            entries |= {322: (3, 1, p["tile"][0]), 323: (3, 1, p["tile"][1])}
        else:
            entries[278] = (3, 1, p.get("rows", p["h"]))
        for tag, src, values in ((so, 273, offsets), (sc, 279, counts)):
            entries[tag] = (4, len(values), arrays.get(src, values[0]))
        out += b"\0" * (len(out) % 2)
        ifds.append(len(out))
        out += struct.pack("<H", len(entries))
        for tag in sorted(entries):
            out += struct.pack("<HHII", tag, *entries[tag])
        links.append(len(out))
        out += b"\0\0\0\0"
    for at, target in zip(links, ifds + ([ifds[0]] if loop else [])):
        struct.pack_into("<I", out, at, target)
    return bytes(out)


def _page(compression: int, img: np.ndarray = IMG, **kw) -> dict:
    (h, w), (strip, predictor) = img.shape, _strip(img, compression)
    return {
        "strips": [strip],
        "w": w,
        "h": h,
        "compression": compression,
        "predictor": predictor,
    } | kw


def _load(data: bytes) -> np.ndarray:
    return load_image(data, ".tif", Limits())


@pytest.mark.parametrize("compression", [1, LZW, DEFLATE, PACKBITS])
def test_an_intact_tiff_decodes_to_its_pixels(compression):
    assert np.array_equal(_load(_tiff([_page(compression)])), IMG)
    whole = cv2.imencode(".tif", IMG, [cv2.IMWRITE_TIFF_COMPRESSION, compression])[1]
    assert np.array_equal(_load(whole.tobytes()), IMG)


@pytest.mark.parametrize("compression", [1, LZW])
def test_a_colour_tiff_is_read_as_8_bit_with_three_channels(compression):
    rgb = np.random.default_rng(3).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    data = cv2.imencode(".tif", rgb, [cv2.IMWRITE_TIFF_COMPRESSION, compression])[1].tobytes()
    head = read_header(data)  # BitsPerSample 8,8,8 sits at an offset, not in the entry
    assert (head.width, head.height, head.bit_depth, head.channels) == (30, 40, 8, 3)
    assert np.array_equal(_load(data), rgb[..., ::-1])  # OpenCV wrote BGR; it loads as RGB


@pytest.mark.parametrize("compression", [1, LZW, DEFLATE, PACKBITS])
def test_a_strip_cut_short_with_its_byte_count_fixed_is_refused(compression):
    page = _page(compression)
    page["strips"] = [page["strips"][0][: len(page["strips"][0]) // 2]]
    with pytest.raises(BadImage, match=r"damaged TIFF: its strip 0 .* holds \d+ of the 6400"):
        _load(_tiff([page]))


def test_a_strip_past_the_end_of_the_file_is_refused():
    page = _page(LZW)
    page["counts"] = [len(page["strips"][0]) + 1000]
    with pytest.raises(BadImage, match="truncated TIFF: its strip 0 .* past the end"):
        _load(_tiff([page]))


def test_a_cut_strip_among_several_is_found():
    rows = [_strip(IMG[r : r + 25], LZW)[0] for r in range(0, 100, 25)]
    page = {"strips": rows, "w": 64, "h": 100, "rows": 25, "compression": LZW, "predictor": 2}
    assert np.array_equal(_load(_tiff([page])), IMG)
    page["strips"] = rows[:3] + [rows[3][:-40]]
    with pytest.raises(BadImage, match="its strip 3"):
        _load(_tiff([page]))
    page["strips"] = rows[:3]  # a strip missing altogether
    with pytest.raises(BadImage, match="lists 3 strips or tiles where its 64x100 image needs 4"):
        _load(_tiff([page]))


def test_tiles_are_checked_like_strips():
    tiles = [IMG[r : r + 64, c : c + 32] for r in (0, 64) for c in (0, 32)]
    tiles = [np.pad(t, ((0, 64 - t.shape[0]), (0, 0))).tobytes() for t in tiles]
    page = {"strips": tiles, "w": 64, "h": 100, "tile": (32, 64)}
    assert np.array_equal(_load(_tiff([page])), IMG)
    page["strips"] = tiles[:3] + [tiles[3][:1000]]
    with pytest.raises(BadImage, match="its strip 3 .* holds 1000 of the 2048"):
        _load(_tiff([page]))


def test_a_multi_page_tiff_is_refused_but_a_thumbnail_does_not_count():
    thumb = cv2.resize(IMG, (16, 25))
    with pytest.raises(BadImage, match=r"multi-page TIFF \(3 pages\).*a file of its own"):
        _load(_tiff([_page(LZW), _page(LZW, 255 - IMG), _page(1, thumb, subfile=1), _page(1)]))
    assert np.array_equal(_load(_tiff([_page(LZW), _page(1, thumb, subfile=1)])), IMG)
    with pytest.raises(BadImage, match="damaged TIFF: its image directories form a loop"):
        _load(_tiff([_page(1), _page(1)], loop=True))


def test_a_compression_that_is_not_checked_is_refused_with_what_to_do():
    page = _page(1)
    page["compression"] = 7
    with pytest.raises(BadImage, match="scheme 7 .*save it that way, or as PNG"):
        _load(_tiff([page]))


def test_a_complete_png_with_data_after_iend_is_inspected():
    png = cv2.imencode(".png", IMG)[1].tobytes()
    assert np.array_equal(load_image(png + b"GARBAGE" * 100, ".png", Limits()), IMG)
    with pytest.raises(BadImage, match="truncated PNG: the file ends before its IEND"):
        load_image(png[:-12] + b"GARBAGE" * 10, ".png", Limits())


def test_damaged_and_multi_page_tiffs_are_quarantined_by_the_station(tmp_path):
    cut = _page(LZW)
    cut["strips"] = [cut["strips"][0][:-200]]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "cut.tif").write_bytes(_tiff([cut]))
    (inbox / "pages.tif").write_bytes(_tiff([_page(1), _page(1)]))
    (inbox / "good.tif").write_bytes(_tiff([_page(LZW)]))
    sink = MemorySink()
    st = Station(folder_config(tmp_path), inspector=FakeInspector(), sinks={"db": sink})
    assert st.run(install_signals=False) == 0
    got = {Path(i.source).name: (i.verdict.decision.value, i.error or "") for i in sink.items}
    assert got["good.tif"] == ("PASS", "")
    assert got["cut.tif"][0] == "ERROR" and "damaged TIFF" in got["cut.tif"][1]
    assert got["pages.tif"][0] == "ERROR" and "multi-page" in got["pages.tif"][1]
