"""Showing a URL without its secrets: ``rtsp://admin:pass@cam/stream`` -> ``rtsp://admin:***@cam/stream``.

Used wherever a camera (or broker) URL reaches a log line, a status file or the terminal. The
password of the user-info part is masked, and so is the value of any query parameter whose name
says it holds a secret (``password``, ``pwd``, ``token``, ``key``, ``auth``...), as some cameras
take their credentials there. A string without ``://`` (a video file path) is returned as is.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[^=&;#]*(?:pass|pwd|token|secret|auth|key|sig)"
    r"[^=&;#]*)=)([^&;#]*)"
)


def mask_url(url: str | None) -> str | None:
    """``url`` with its password (and secret-looking query values) replaced by ``***``."""
    if not url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # not parseable as a URL: mask anything between "://" and "@"
        return re.sub(r"(://[^/@:]*:)[^/@]*@", rf"\g<1>{MASK}@", url)
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        netloc = f"{userinfo}@{host}"
    out = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return _SECRET_PARAM.sub(rf"\g<1>{MASK}", out)
