"""Checking a TIFF before it is decoded: one image per file, and every strip (or tile) inside
the file and holding all the pixels it should.

OpenCV decodes TIFF through libtiff, which reports a damaged strip (an LZW strip cut short,
its byte count fixed to match) and still returns the image, the missing rows black: a damaged
part would be judged. So the station reads the file's layout itself (:func:`tiff_problem`):

* every strip or tile lies within the file;
* it decodes to the bytes its rows need: checked for uncompressed, LZW, Deflate and PackBits
  data, the compressions a camera or image library writes (a TIFF compressed otherwise, e.g.
  JPEG-in-TIFF, is refused with a reason: save it uncompressed, LZW or Deflate, or as PNG);
* one image: a multi-page TIFF is refused rather than judged on its first page alone (reduced
  resolution copies, thumbnails or pyramid levels, do not count as pages).

LZW data is not decoded to count what it decodes to: its codes are read with numpy and each
one's length found from the code it extends (about 0.1 s a megapixel of noise, less for an
ordinary image, which compresses better).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

NAMES = {1: "no", 5: "LZW", 8: "Deflate", 32946: "Deflate", 32773: "PackBits"}
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_INTS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I"}
_WANTED = {254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 322, 323, 324, 325}
MAX_PAGES = 1000  # IFDs followed, at most (a loop of IFDs is refused long before)


class _Damaged(ValueError):
    """The layout makes no sense: the message says where."""


class _Refused(Exception):
    """The file cannot be inspected: the message says why (and what to do)."""


@dataclass(frozen=True)
class _Part:
    """One strip or tile: where it is, how long, and the bytes it must decode to."""

    offset: int
    count: int
    expected: int


def tiff_problem(data: bytes) -> str | None:
    """Why a TIFF is refused (multi-page, compressed in a way not checked, damaged: see the
    module docstring), or None when it can be decoded."""
    try:
        _check(data)
    except _Refused as e:
        return str(e)
    return None


def _check(data: bytes) -> None:
    e = "<" if data[:2] == b"II" else ">"
    try:
        first = struct.unpack(e + "I", data[4:8])[0]
        tags, following = _ifd(data, first, e)
        pages = 1 + _pages_after(data, following, e, {first})
        if pages > 1:
            raise _Refused(
                f"multi-page TIFF ({pages} pages): the station inspects one image per file "
                "and would judge the first page only; save each page as a file of its own"
            )
        compression = _one(tags, 259, 1)
        if compression not in NAMES:
            raise _Refused(
                f"TIFF compressed with scheme {compression} (e.g. JPEG-in-TIFF): the station "
                "checks uncompressed, LZW, Deflate and PackBits TIFFs for damage only; save "
                "it that way, or as PNG"
            )
        parts = _parts(tags)
    except (struct.error, IndexError, _Damaged) as err:
        raise _Refused(f"damaged TIFF: {err}; send the complete file again") from None
    for k, p in enumerate(parts):
        _check_part(data, k, p, compression)


def _ifd(d: bytes, off: int, e: str) -> tuple[dict[int, tuple[int, ...]], int]:
    """The integer tags of the IFD at ``off`` that matter here, and the next IFD's offset."""
    if off < 8 or off + 2 > len(d):
        raise _Damaged(f"its image directory at byte {off} lies outside the file")
    n = struct.unpack(e + "H", d[off : off + 2])[0]
    end = off + 2 + 12 * n
    if end + 4 > len(d):
        raise _Damaged(f"its image directory at byte {off} ({n} entries) is cut short")
    tags: dict[int, tuple[int, ...]] = {}
    for k in range(n):
        p = off + 2 + 12 * k
        tag, typ, count = struct.unpack(e + "HHI", d[p : p + 8])
        if tag not in _WANTED or typ not in _INTS:
            continue
        size = _SIZES[typ] * count
        at = p + 8 if size <= 4 else struct.unpack(e + "I", d[p + 8 : p + 12])[0]
        if at + size > len(d):
            raise _Damaged(f"tag {tag} points to byte {at}, past the end of the file")
        tags[tag] = struct.unpack(f"{e}{count}{_INTS[typ]}", d[at : at + size])
    return tags, struct.unpack(e + "I", d[end : end + 4])[0]


def _pages_after(d: bytes, off: int, e: str, seen: set[int]) -> int:
    """Full-resolution images after the first (reduced-resolution copies do not count)."""
    pages = 0
    while off:
        if off in seen or len(seen) > MAX_PAGES:
            raise _Damaged("its image directories form a loop")
        seen.add(off)
        tags, off = _ifd(d, off, e)
        if not _one(tags, 254, 0) & 1:
            pages += 1
    return pages


def _one(tags: dict[int, tuple[int, ...]], tag: int, default: int) -> int:
    v = tags.get(tag)
    return v[0] if v else default


def _parts(tags: dict[int, tuple[int, ...]]) -> list[_Part]:
    """The strips or tiles of the image, with the bytes each must decode to."""
    w, h = _one(tags, 256, 0), _one(tags, 257, 0)
    spp = _one(tags, 277, 1)
    bits = tags.get(258, (1,))
    planar = _one(tags, 284, 1) == 2
    pixel_bits = bits[0] if planar else (sum(bits) if len(bits) == spp else bits[0] * spp)
    planes = spp if planar else 1
    sized = _one(tags, 262, 0) != 6  # YCbCr may be subsampled: its size is not checked
    if 324 in tags:
        tw, tl = _one(tags, 322, 0), _one(tags, 323, 0)
        if tw <= 0 or tl <= 0:
            raise _Damaged("its tiles have no size")
        n = -(-w // tw) * -(-h // tl) * planes
        sizes = [tl * -(-tw * pixel_bits // 8)] * n
        offsets, counts = tags[324], tags.get(325, ())
    else:
        rps = min(_one(tags, 278, h) or h, h)
        per_plane = -(-h // rps)
        row = -(-w * pixel_bits // 8)
        last = h - rps * (per_plane - 1)
        sizes = ([rps * row] * (per_plane - 1) + [last * row]) * planes
        offsets, counts = tags.get(273, ()), tags.get(279, ())
    if len(offsets) < len(sizes) or len(counts) < len(sizes):
        raise _Damaged(
            f"it lists {min(len(offsets), len(counts))} strips or tiles where its "
            f"{w}x{h} image needs {len(sizes)}"
        )
    return [_Part(o, c, s if sized else 0) for o, c, s in zip(offsets, counts, sizes)]


def _check_part(data: bytes, k: int, p: _Part, compression: int) -> None:
    if p.offset + p.count > len(data):
        raise _Refused(
            f"truncated TIFF: its strip {k} at byte {p.offset} claims {p.count} bytes, past "
            f"the end of the file ({len(data)} bytes); send the complete file again"
        )
    chunk = memoryview(data)[p.offset : p.offset + p.count]
    if compression == 1:
        got = p.count
    elif compression == 5:
        got = _lzw_length(chunk, p.expected)
    elif compression == 32773:
        got = _packbits_length(chunk, p.expected)
    else:
        got = _deflate_length(chunk, p.expected)
    if got < p.expected:
        raise _Refused(
            f"damaged TIFF: its strip {k} ({NAMES[compression]} compression) holds "
            f"{got} of the {p.expected} bytes of its rows (cut short, or damaged); the "
            "decoder would fill the rest with black. Send the complete file again"
        )


def _deflate_length(chunk: memoryview, limit: int) -> int:
    """Bytes a zlib stream decodes to (up to ``limit``; memory stays bounded)."""
    d, n, rest = zlib.decompressobj(), 0, bytes(chunk)
    try:
        while rest and n < limit:
            n += len(d.decompress(rest, 1 << 20))
            rest = d.unconsumed_tail
    except zlib.error:
        pass
    return n


def _packbits_length(s: memoryview, limit: int) -> int:
    i, n, end = 0, 0, len(s)
    while i < end and n < limit:
        c = s[i]
        if c < 128:  # c + 1 literal bytes
            take = min(c + 1, end - i - 1)
            n, i = n + take, i + c + 2
        elif c > 128:  # one byte repeated 257 - c times
            if i + 1 >= end:
                break
            n, i = n + 257 - c, i + 2
        else:
            i += 1
    return n


def _lzw_length(s: memoryview, limit: int) -> int:
    """Bytes a TIFF LZW strip decodes to, up to its end-of-information code, the end of the
    data, or a code that cannot be there. Counted, not decoded: a code's string is one byte
    longer than that of the code it extends (:func:`_lzw_codes`), so its length is its depth
    in that tree, found for all codes at once by pointer jumping."""
    if len(s) >= 2 and s[0] == 0 and s[1] & 1:
        return limit  # the pre-1992 bit order, which libtiff also reads: not walked here
    codes, j = _lzw_codes(s)
    if not codes.size:
        return 0
    # code c >= 258 of a segment extends the string of the segment's code c - 258
    anc = np.where(codes >= 258, np.arange(codes.size) - j + codes - 258, -1)
    depth = (anc >= 0).astype(np.int64)
    live = np.flatnonzero(anc >= 0)
    while live.size:
        a = anc[live]
        depth[live] += depth[a]
        anc[live] = anc[a]
        live = live[anc[live] >= 0]
    return int(depth.sum() + codes.size)


# code k of a segment (after a Clear code): its width in bits (9 to 12, growing with the table:
# before code k >= 1 the table holds 257 + k entries, and TIFF widens one code early), where it
# starts, and the largest code that can be there
_K = np.arange(4096)
_WIDTH = np.where(
    _K == 0, 9, np.select([_K + 257 < 511, _K + 257 < 1023, _K + 257 < 2047], [9, 10, 11], 12)
)
_START = np.concatenate([[0], np.cumsum(_WIDTH)[:-1]])
_MAX_CODE = np.minimum(_K + 257, 4095)


def _lzw_codes(s: memoryview) -> tuple[np.ndarray, np.ndarray]:
    """The codes of an LZW strip, segment by segment (a segment ends at a Clear code), up to
    the end-of-information code, the end of the data or a code that cannot be there; and each
    code's index in its segment."""
    data = np.frombuffer(s, np.uint8)
    bits = len(data) * 8
    padded = np.zeros(len(data) + 3, np.int64)
    padded[: len(data)] = data
    out: list[np.ndarray] = []
    pos = 0
    while True:
        starts = pos + _START
        n = int(np.searchsorted(starts + _WIDTH, bits, side="right"))  # codes within the data
        st, w = starts[:n], _WIDTH[:n]
        b = st >> 3
        v = (padded[b] << 16) | (padded[b + 1] << 8) | padded[b + 2]
        codes = (v >> (24 - (st & 7) - w)) & ((1 << w) - 1)
        special = (codes == 256) | (codes == 257)
        bad = ((codes > _MAX_CODE[:n]) | (codes >= 256) & (_K[:n] == 0)) & ~special
        ends = np.flatnonzero(bad | special)
        end = int(ends[0]) if ends.size else n
        out.append(codes[:end])
        if not ends.size or codes[end] != 256:
            break
        pos = int(st[end] + w[end])
    codes = np.concatenate(out)
    return codes, np.concatenate([_K[: len(c)] for c in out])
