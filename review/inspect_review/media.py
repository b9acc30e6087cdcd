"""The recorded images, as the page shows them: only the files the database names for an
inspection (its ``source`` and ``overlay_path``; the URL carries the inspection id, never a
path), only regular files of at most :data:`MAX_BYTES`, opened without blocking (a named pipe
or device recorded by mistake cannot hang the server), not empty, and, for the image, still the
recorded one (its sha256). A PNG, JPEG, GIF, WebP or BMP is sent as it is (its type read from
its first bytes, once it decodes); anything else OpenCV decodes (TIFF) is sent as PNG. A file
that is gone, empty, replaced, damaged or unreadable gets a placeholder picture that says why.
The export (:mod:`inspect_review.export`) reads the files with the same checks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from html import escape
from typing import Any

import cv2
import numpy as np

from inspect_core.data.bit_depth import display_bits, to_8bit

MAX_BYTES = 64 * 1024 * 1024
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


@dataclass(frozen=True)
class Picture:
    body: bytes
    media_type: str
    missing: str | None = None  # why the file could not be shown (a placeholder then)


class OutsideRoots(ValueError):
    """The recorded file lies outside the folders given with ``--media-root``."""


class NotTheRecorded(ValueError):
    """The file there is not the recorded image: its sha256 differs."""


def load_picture(
    path: str | None, what: str, roots: tuple[str, ...] = (), sha256: str | None = None
) -> Picture:
    """The picture at ``path`` for the browser, or a placeholder saying why there is none;
    ``roots``: the folders pictures may come from (symlinks resolved; none: any path the
    database records); ``sha256``: the recorded image's, which the file must still have."""
    if not path:
        return placeholder(f"no {what} recorded")
    try:
        data = read_recorded(path, roots, sha256)
    except OutsideRoots:
        return placeholder(f"{what} not shown: outside the folders this page serves", path)
    except OSError as e:
        reason = "file not found" if isinstance(e, FileNotFoundError) else e.strerror or str(e)
        return placeholder(f"{what} missing: {reason}", path)
    except ValueError as e:
        return placeholder(f"{what} not shown: {e}", path)
    media = _sniff(data)
    if media is not None and _decodes(data, media):
        return Picture(data, media)
    png = _to_png(data)
    if png is None:
        return placeholder(f"{what} is damaged or not an image a browser can show", path)
    return Picture(png, "image/png")


def read_recorded(path: str, roots: tuple[str, ...] = (), sha256: str | None = None) -> bytes:
    """The bytes of the recorded file at ``path`` as the page and the export may use them:
    inside ``roots`` when given (symlinks resolved: :class:`OutsideRoots` otherwise), a regular
    file of at most :data:`MAX_BYTES`, not empty, and with ``sha256`` when given
    (:class:`NotTheRecorded` otherwise). OSError when it cannot be opened, ValueError for
    the rest."""
    if roots:
        real = within(path, roots)
        if real is None:
            raise OutsideRoots("outside the folders given with --media-root")
        path = real  # what was checked is what is read (no symlink swapped in between)
    data = read_regular(path, follow=not roots)
    if not data:
        raise ValueError("the file is empty (0 bytes)")
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise NotTheRecorded(
            "not the recorded image (its sha256 differs): the file was replaced or its "
            "name reused since it was inspected"
        )
    return data


def decode(data: bytes, flags: int) -> Any:
    """``data`` decoded by OpenCV (``cv2.IMREAD_*`` ``flags``), or None when it cannot be
    (OpenCV raises on some broken files instead of returning None)."""
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None


def within(path: str, roots: tuple[str, ...]) -> str | None:
    """``path`` with its symlinks resolved when that lies in one of the folders ``roots``,
    else None (a path that cannot be resolved, e.g. with a NUL byte, too)."""
    try:
        real = os.path.realpath(path)
        for r in roots:
            top = os.path.realpath(r)
            if os.path.commonpath([real, top]) == top:
                return real
    except (ValueError, OSError):
        return None
    return None


def read_regular(path: str, follow: bool = True) -> bytes:
    """The bytes of the regular file at ``path``; OSError when it cannot be opened, ValueError
    when it is not a regular file or is larger than :data:`MAX_BYTES`. ``follow=False``: a
    symlink there is refused (OSError), for a path already resolved and checked."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > MAX_BYTES:
            raise ValueError(f"{st.st_size:,} bytes, more than {MAX_BYTES:,}")
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _sniff(data: bytes) -> str | None:
    """The media type a browser shows ``data`` as, or None when it must be converted (a
    16-bit PNG: a browser would show a camera's raw 12-bit values black)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[24:25] == b"\x10":  # IHDR: 16 bits
        return None
    for magic, media in MAGIC:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _decodes(data: bytes, media: str) -> bool:
    """Whether the browser gets an image it can show (a file cut short or overwritten with
    junk after its first bytes gets the placeholder); GIF is taken as it is."""
    return media == "image/gif" or decode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None


def _to_png(data: bytes) -> bytes | None:
    img = decode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype == np.uint16:  # scaled to the bits its values use: a 12-bit camera's raw
        img = to_8bit(img, display_bits(img))  # values would show black as value / 257
    elif img.dtype != np.uint8:
        return None
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else None


def placeholder(message: str, path: str | None = None) -> Picture:
    """A grey SVG picture with ``message`` (and the file's name), escaped."""
    name = os.path.basename(path) if path else ""
    lines = [escape(message[:120])] + ([escape(name[:120])] if name else [])
    text = "".join(
        f'<text x="200" y="{140 + 24 * i}" text-anchor="middle" font-size="15" '
        f'font-family="sans-serif" fill="#555">{t}</text>'
        for i, t in enumerate(lines)
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" '
        'viewBox="0 0 400 300"><rect width="400" height="300" fill="#e6e6e6"/>'
        f"{text}</svg>"
    )
    return Picture(svg.encode(), "image/svg+xml", message)


def thumbnail(picture: Picture, side: int = 160) -> Picture:
    """``picture`` downscaled to at most ``side`` pixels as JPEG (a placeholder stays as is)."""
    if picture.missing is not None:
        return picture
    img = decode(picture.body, cv2.IMREAD_COLOR)
    if img is None:
        return placeholder("not an image a browser can show")
    h, w = img.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return Picture(buf.tobytes(), "image/jpeg") if ok else picture
