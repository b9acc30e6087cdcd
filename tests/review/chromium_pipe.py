"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
no WebDriver, no extra package, no port. Used by the review page's tests and by
``demo_shots.py`` (the README's screenshots).

Messages are JSON objects separated by NUL bytes; Chromium reads them on its fd 3 and writes on
its fd 4. One page target, attached in flat mode: every page command carries its session id.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

# keys the tests press: key -> (code, Windows virtual key code)
SPECIAL = {
    "ArrowDown": ("ArrowDown", 40),
    "ArrowUp": ("ArrowUp", 38),
    "Enter": ("Enter", 13),
    "Escape": ("Escape", 27),
    "Backspace": ("Backspace", 8),
    "ArrowLeft": ("ArrowLeft", 37),
    "ArrowRight": ("ArrowRight", 39),
    "Delete": ("Delete", 46),
    " ": ("Space", 32),
    "[": ("BracketLeft", 219),
    "]": ("BracketRight", 221),
}
# the text a special key types
TYPED = {"Enter": "\r", " ": " ", "[": "[", "]": "]"}


class Browser:
    """One headless Chromium with one page. ``with Browser(path, profile) as b: ...``"""

    def __init__(self, chromium: str, profile: Path, width: int = 1280, height: int = 900):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def pipes() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pipes,
            close_fds=False,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    # -- the protocol ------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        box = self._replies.get(msg["id"])
                    if box is not None:
                        box.put(msg)
                else:
                    self.events.append(msg)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params: Any):
        n = next(self._ids)
        box: queue.Queue = queue.Queue()
        with self._lock:
            self._replies[n] = box
        msg: dict[str, Any] = {"id": n, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"Chromium did not answer {method} in {timeout} s") from None
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def page(self, method: str, **params: Any):
        return self.call(method, self.session, **params)

    # -- what the tests do -------------------------------------------------------------
    def go(self, url: str, ready: str = "document.readyState === 'complete'") -> None:
        self.page("Page.navigate", url=url)
        self.wait(ready)

    def js(self, expression: str) -> Any:
        res = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait(self, expression: str, timeout: float = 20) -> Any:
        """Until ``expression`` is truthy in the page (navigations in between are fine)."""
        end = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < end:
            try:
                last = self.js(expression)
            except RuntimeError:
                last = None  # the page is being replaced
            if last:
                return last
            time.sleep(0.1)
        url = self.js("location.href")
        raise TimeoutError(f"waited {timeout} s for {expression} on {url}")

    def key(self, key: str) -> None:
        """Press and release one key, as a person would."""
        if key in SPECIAL:
            code, vk = SPECIAL[key]
            text = TYPED.get(key, "")
        else:
            code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
            vk, text = ord(key.upper()), key
        down = {"key": key, "code": code, "windowsVirtualKeyCode": vk}
        self.page("Input.dispatchKeyEvent", type="keyDown", text=text, **down)
        self.page("Input.dispatchKeyEvent", type="keyUp", **down)

    def screenshot(self, path: Path) -> Path:
        data = self.page("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
