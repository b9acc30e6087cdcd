"""Checking an image file before it reaches the model: every refusal says why, in words.

The order matters: cheap checks first, and the pixel count is read from the file header (PNG
IHDR, JPEG SOFn, BMP, TIFF IFD) so a decompression bomb is refused before anything is decoded;
so is an image that would make the recipe's model run too long
(:func:`inspect_stations.inputs.work_limit.check_work`).
:func:`decode` then converts what is sensible (RGBA without transparency -> RGB, gray <-> RGB is
left to the model's own channel conversion, 16-bit -> 8-bit when allowed) and refuses the rest.

A damaged file is refused, never judged: every PNG chunk's CRC is checked, libpng's errors
refuse the file, and 8-bit JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` in strict
mode, where a warning (``Corrupt JPEG data: premature end of data segment``: a file cut short
and given an end-of-image marker, whose missing part the decoder would fill with grey) is an
error. OpenCV prints those warnings and returns the guessed image. The pixels are the same as
OpenCV's for intact files, and decoding is as fast or faster. A TIFF's strips are checked the
same way before libtiff (which fills a damaged strip with black) decodes it, and a multi-page
TIFF is refused (:mod:`inspect_stations.inputs.tiff_check`). Data after a PNG's IEND chunk (a
complete image, with something appended) is ignored, as every PNG decoder does.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import simplejpeg  # type: ignore[import-untyped]  # ships no type information

from inspect_core.data.bit_depth import over_range, to_8bit
from inspect_stations.config.station import Limits
from inspect_stations.inputs.tiff_check import tiff_problem


class BadImage(Exception):
    """The file cannot be inspected; ``str(e)`` is the reason recorded and shown."""


@dataclass
class Header:
    format: str  # "png", "jpeg", "bmp", "tiff"
    width: int
    height: int
    bit_depth: int = 8
    channels: int = 0  # 0 = not known from the header


FORMAT_EXTS = {
    "png": {".png"},
    "jpeg": {".jpg", ".jpeg", ".jpe"},
    "bmp": {".bmp", ".dib"},
    "tiff": {".tif", ".tiff"},
}


def sniff(data: bytes) -> str | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def read_header(data: bytes) -> Header:
    """Format and dimensions from the first bytes; :class:`BadImage` when they make no sense."""
    fmt = sniff(data)
    if fmt is None:
        head = data[:16]
        hint = (
            " (it looks like text)"
            if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head)
            else ""
        )
        raise BadImage(
            f"not an image: the first bytes match no PNG, JPEG, BMP or TIFF header{hint}"
        )
    try:
        return {"png": _png, "jpeg": _jpeg, "bmp": _bmp, "tiff": _tiff}[fmt](data)
    except (struct.error, IndexError, ValueError) as e:
        raise BadImage(f"truncated or corrupt {fmt.upper()} header ({e})") from None


def _png(d: bytes) -> Header:
    if d[12:16] != b"IHDR":
        raise ValueError("no IHDR chunk")
    w, h, depth, ctype = struct.unpack(">IIBB", d[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(ctype, 0)
    return Header("png", w, h, depth, channels)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(d: bytes) -> Header:
    i = 2
    while i + 4 <= len(d):
        if d[i] != 0xFF:
            raise ValueError(f"bad marker at byte {i}")
        marker = d[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", d[i + 2 : i + 4])[0]
        if marker in _SOF:
            depth, h, w, n = struct.unpack(">BHHB", d[i + 4 : i + 10])
            return Header("jpeg", w, h, depth, n)
        if marker == 0xDA:
            raise ValueError("scan data before the frame header")
        i += 2 + length
    raise ValueError("no frame header (SOF) found")


def _bmp(d: bytes) -> Header:
    size = struct.unpack("<I", d[14:18])[0]
    if size == 12:
        w, h, _, bpp = struct.unpack("<HHHH", d[18:26])
    else:
        w, h, _, bpp = struct.unpack("<iiHH", d[18:30])
    return Header("bmp", abs(w), abs(h), 8, {8: 1, 24: 3, 32: 4}.get(bpp, 0))


def _tiff(d: bytes) -> Header:
    e = "<" if d[:2] == b"II" else ">"
    off = struct.unpack(e + "I", d[4:8])[0]
    n = struct.unpack(e + "H", d[off : off + 2])[0]
    tags: dict[int, int] = {}
    for k in range(n):
        p = off + 2 + 12 * k
        tag, typ, count = struct.unpack(e + "HHI", d[p : p + 8])
        size = 2 if typ == 3 else 4
        at = p + 8
        if count * size > 4:  # the values do not fit in the entry: it holds their offset
            at = struct.unpack(e + "I", d[p + 8 : p + 12])[0]  # (BitsPerSample 8,8,8 of RGB)
        tags[tag] = struct.unpack(e + ("H" if typ == 3 else "I"), d[at : at + size])[0]
    if 256 not in tags or 257 not in tags:
        raise ValueError("no ImageWidth/ImageLength tags")
    return Header("tiff", tags[256], tags[257], tags.get(258, 8), tags.get(277, 0))


def check_complete(data: bytes, fmt: str) -> None:
    """Refuse files that stop early (a copy interrupted, a camera upload cut off)."""
    if fmt == "png":
        _png_chunks(data)  # up to IEND; anything after it is not part of the image
    elif fmt == "tiff":
        problem = tiff_problem(data)
        if problem:
            raise BadImage(problem)
    elif fmt == "jpeg":
        sos = data.find(b"\xff\xda")
        eoi = data.rfind(b"\xff\xd9")
        if sos < 0 or eoi < sos:
            raise BadImage(
                "truncated JPEG: the file ends before its end-of-image marker "
                "(copy interrupted?); send the complete file again"
            )


def _png_chunks(data: bytes) -> None:
    """Walk the chunks up to IEND, checking each one's length and CRC (about 1 ms a MB)."""
    view = memoryview(data)
    i = 8
    while True:
        if i + 12 > len(data):
            raise BadImage(
                f"truncated PNG: the file ends inside a chunk at byte {i}, before its IEND "
                "chunk (copy interrupted?); send the complete file again"
            )
        n, kind = struct.unpack(">I4s", data[i : i + 8])
        end = i + 12 + n
        if end > len(data):
            if b"IEND" not in data[i:]:  # cut short (data after IEND is not looked at)
                raise BadImage(
                    "truncated PNG: the file ends before its IEND chunk "
                    "(copy interrupted?); send the complete file again"
                )
            raise BadImage(
                f"truncated or damaged PNG: its {kind.decode('latin-1')!r} chunk at byte {i} "
                f"claims {n} bytes, more than the file holds; send the complete file again"
            )
        if zlib.crc32(view[i + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise BadImage(
                f"damaged PNG: the CRC of its {kind.decode('latin-1')} chunk at "
                f"byte {i} does not match (bits changed in transfer or on disk); "
                "send the file again"
            )
        if kind == b"IEND":
            return
        i = end


def check_bytes(data: bytes, ext: str, limits: Limits) -> Header:
    """Every check that needs no decoding: size, extension, format, header, pixel count."""
    if not data:
        raise BadImage(
            "file is empty (0 bytes): the camera or the copy that wrote it failed; "
            "check the writer and send the image again"
        )
    if len(data) > limits.max_bytes:
        raise BadImage(
            f"file is {len(data)} bytes, above the station limit of "
            f"{limits.max_bytes} (limits.max_bytes)"
        )
    ext = ext.lower()
    if ext not in limits.extensions:
        raise BadImage(
            f"extension {ext or '(none)'!r} is not one this station takes "
            f"({', '.join(limits.extensions)}); rename the file if it is an image, "
            "or keep other files out of the inbox"
        )
    hdr = read_header(data)
    if ext not in FORMAT_EXTS[hdr.format]:
        raise BadImage(
            f"wrong extension: the file is named {ext} but holds {hdr.format.upper()} "
            f"data; fix the program that writes it (or rename it "
            f"{sorted(FORMAT_EXTS[hdr.format])[0]})"
        )
    if hdr.width <= 0 or hdr.height <= 0:
        raise BadImage(f"{hdr.format.upper()} header says {hdr.width}x{hdr.height} pixels")
    if hdr.width * hdr.height > limits.max_pixels:
        raise BadImage(
            f"too many pixels: {hdr.width}x{hdr.height} = {hdr.width * hdr.height:,} "
            f"is above the limit of {limits.max_pixels:,} (limits.max_pixels); "
            "refused before decoding"
        )
    if hdr.bit_depth > 8 and limits.sixteen_bit == "refuse":
        raise BadImage(
            f"{hdr.bit_depth}-bit image: this station takes 8-bit images; export "
            '8-bit, or set limits.sixteen_bit = "scale" (or the camera\'s bits: "12") to '
            "convert"
        )
    check_complete(data, hdr.format)
    return hdr


def _strict_jpeg(data: bytes, colorspace: str) -> np.ndarray:
    try:
        img: np.ndarray = simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=True)
        return img
    except ValueError as e:
        raise BadImage(
            f"corrupt JPEG: {e} (the file was cut short or damaged; the decoder "
            "would have guessed the missing pixels); send the complete file "
            "again"
        ) from None


def _sixteen_to_8(img: np.ndarray, limits: Limits) -> np.ndarray:
    """A 16-bit image as 8-bit by ``limits.sixteen_bit``: "scale" over the whole 16-bit range
    (value / 257, as a PNG stores any depth); "10", "12" or "14" for a camera that writes its
    raw values (0..4095 for 12 bits), refusing a value above them (the camera sends more bits
    than the station was told)."""
    if limits.sixteen_bit == "refuse":
        raise BadImage(
            "16-bit image: this station takes 8-bit images; export 8-bit, or set "
            'limits.sixteen_bit = "scale" (or the camera\'s bits: "12") to convert'
        )
    if limits.sixteen_bit == "scale":
        return to_8bit(img)
    bits = int(limits.sixteen_bit)
    if n := over_range(img, bits):
        raise BadImage(
            f"{n} pixel value(s) above {2**bits - 1}, the {bits}-bit range "
            f'limits.sixteen_bit = "{bits}" says the camera sends; set it to the bits the '
            'camera really uses (or "scale" for values spread over all 16)'
        )
    return to_8bit(img, bits)


def decode(data: bytes, hdr: Header, limits: Limits) -> np.ndarray:
    """Decode to uint8 gray (H, W) or RGB (H, W, 3) as the rest of inspect expects."""
    img: np.ndarray | None
    if hdr.format == "jpeg" and hdr.bit_depth == 8 and hdr.channels in (1, 3):
        img = _strict_jpeg(data, "GRAY" if hdr.channels == 1 else "RGB")
        img = img[..., 0] if hdr.channels == 1 else img
        if img.ndim == 3 and _is_gray(img):
            img = img[..., 0].copy()
        return img
    if hdr.format == "jpeg" and hdr.bit_depth == 8 and hdr.channels == 4:
        _strict_jpeg(data, "CMYK")  # checked strictly; converted as OpenCV always did
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BadImage(
            f"corrupt {hdr.format.upper()}: the header is fine but the pixel data "
            "cannot be decoded (truncated or damaged file)"
        )
    if img.shape[1] != hdr.width or img.shape[0] != hdr.height:
        raise BadImage(
            f"decoded size {img.shape[1]}x{img.shape[0]} differs from the header's "
            f"{hdr.width}x{hdr.height}: damaged file"
        )
    if img.dtype == np.uint16:
        img = _sixteen_to_8(img, limits)
    elif img.dtype != np.uint8:
        raise BadImage(f"unsupported pixel type {img.dtype}; save it as 8-bit")
    if img.ndim == 3:
        c = img.shape[2]
        if c == 1:
            img = img[..., 0]
        elif c == 2:  # gray + alpha
            if (img[..., 1] != 255).any():
                raise BadImage(
                    "gray image with transparent pixels: what is under them is "
                    "undefined; save it without an alpha channel"
                )
            img = img[..., 0].copy()
        elif c == 4:
            if (img[..., 3] != 255).any():
                raise BadImage(
                    "RGBA image with transparent pixels: what is under them is "
                    "undefined; save it without an alpha channel"
                )
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif c == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        else:
            raise BadImage(f"{c}-channel image: this station takes gray, RGB or RGBA")
        if img.ndim == 3 and _is_gray(img):
            img = img[..., 0].copy()
    return img


def _is_gray(img: np.ndarray) -> bool:
    sub = img[::7, ::7]
    return bool(
        np.array_equal(sub[..., 0], sub[..., 1]) and np.array_equal(sub[..., 1], sub[..., 2])
    )


def load_image(data: bytes, ext: str, limits: Limits) -> np.ndarray:
    """check_bytes + decode."""
    return decode(data, check_bytes(data, ext, limits), limits)
