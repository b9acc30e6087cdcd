"""Shared helpers of the review tests: inspections with real image and overlay files, users, a
live review server on 127.0.0.1 (a random port), and an HTTP client that keeps cookies."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from conftest import main_exit as main_exit  # review tests import it from here too
from db_support import make_inspection

from inspect_core.types import Region

CLASSES = ["background", "scratch", "dent"]
CARD = {"classes": CLASSES, "sha256": "ab" * 32, "version": "test"}
PASSWORD = "correct horse battery"
H, W = 48, 64


def box_region(cls: str, x: int, y: int, w: int, h: int, prob: float = 0.8) -> Region:
    """A rectangular region (its outline the rectangle's corners)."""
    class_id = CLASSES.index(cls)
    poly = [(x, y), (x + w - 1, y), (x + w - 1, y + h - 1), (x, y + h - 1)]
    return Region(
        class_id, cls, (x, y, w, h), w * h, (x + w / 2, y + h / 2), prob, prob - 0.1, poly
    )


def write_picture(path: Path, seed: int, shape: tuple[int, int] = (H, W)) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 12, shape).clip(0, 255).astype(np.uint8)
    img[10:20, 10:30] = 220
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def record_item(
    rec,
    folder: Path,
    i: int,
    *,
    verdict: str = "REVIEW",
    regions: list[Region] | None = None,
    at: float | None = None,
    station: str = "line-1",
    recipe: str = "steel",
    overlay: bool = True,
    card: dict | None = CARD,
    shape: tuple[int, int] = (H, W),
) -> int:
    """Record inspection ``i`` whose source is a real PNG (and overlay) of ``shape`` (height,
    width) pixels; returns its id."""
    import hashlib

    import sqlalchemy as sa

    src = write_picture(folder / f"img{i:04d}.png", i, shape)
    ov = None
    if overlay:
        ov = folder / f"ov{i:04d}.png"
        cv2.imwrite(str(ov), cv2.cvtColor(cv2.imread(str(src), 0), cv2.COLOR_GRAY2BGR))
    insp = make_inspection(
        i,
        station=station,
        verdict=verdict,
        regions=regions if regions is not None else [box_region("scratch", 10, 10, 20, 10)],
        at=at,
        recipe=recipe,
        overlay=str(ov) if ov else None,
    )
    insp.source = str(src)
    insp.image_sha256 = hashlib.sha256(src.read_bytes()).hexdigest()  # as a station records it
    insp.height, insp.width = shape
    assert rec.record(insp, model_card=card)
    with rec.engine.connect() as c:
        return c.execute(
            sa.text("SELECT id FROM inspection WHERE image_sha256 = :s"), {"s": insp.image_sha256}
        ).scalar_one()


def add_user(engine, name: str, role: str = "operator", password: str = PASSWORD):
    from inspect_review.auth import hash_password
    from inspect_review.storage.store import add_user as add

    return add(engine, name, role, hash_password(password))


# -- a live server ------------------------------------------------------------------------


@contextmanager
def live_server(engine, poll_seconds: float = 0.3, **settings) -> Iterator[str]:
    """The review page of ``engine`` served by uvicorn on 127.0.0.1 (a free port); its URL.
    ``settings``: other :class:`ReviewSettings` fields."""
    from inspect_review.app import ReviewSettings
    from inspect_review.server import create_app

    app = create_app(engine, ReviewSettings(poll_seconds=poll_seconds, **settings))
    with serve_app(app) as base:
        yield base


@contextmanager
def serve_app(app) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (a free port); its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "the review server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    set_cookies: list[str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """An HTTP client with a cookie jar, as one browser; redirects are not followed, so that
    tests see them."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(self, method: str, path: str, data: dict | None = None, headers=None) -> Reply:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as r:
                return self._reply(r.status, r.headers, r.read(), r.url)
        except urllib.error.HTTPError as e:
            return self._reply(e.code, e.headers, e.read(), e.url)

    @staticmethod
    def _reply(status, headers, body: bytes, url: str) -> Reply:
        flat = {k.lower(): v for k, v in headers.items()}
        return Reply(status, flat, body, url, headers.get_all("Set-Cookie") or [])

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, data: dict, **kw) -> Reply:
        return self.request("POST", path, data, **kw)

    def login(self, name: str, password: str = PASSWORD) -> Reply:
        form = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        return self.post("/login", {"csrf": token, "name": name, "password": password, "next": "/"})

    def csrf(self, path: str = "/") -> str:
        """The session's CSRF token, as the page at ``path`` carries it."""
        return re.search(r'name="csrf" value="([^"]+)"', self.get(path).text).group(1)
