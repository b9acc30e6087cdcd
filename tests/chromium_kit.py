"""Finding Debian's Chromium for the browser tests (the HTML report, the review page)."""

from __future__ import annotations

import os
import shutil

APT_HINT = "install it with: apt-get install -y chromium"


def find_chromium() -> str | None:
    """``$INSPECT_CHROMIUM``, else the first Chromium on the PATH; None when there is none."""
    for name in (
        os.environ.get("INSPECT_CHROMIUM"),
        "chromium",
        "chromium-browser",
        "google-chrome",
        "/usr/bin/chromium",
    ):
        if name and shutil.which(name):
            return shutil.which(name)
    return None
