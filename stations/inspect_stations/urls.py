"""Showing a URL without its secrets: ``rtsp://admin:pass@cam/stream`` -> ``rtsp://admin:***@cam/stream``.

Used wherever a camera (or broker) URL reaches a log line, a status file or the terminal.
Operators paste passwords as they are, not URL-encoded (``${CAMERA_PASSWORD}`` may hold
``Xy/9#@``), so the URL is not parsed: everything between ``://`` and the *last* ``@`` is the
user-info, and what follows the user name's ``:`` there is masked. The value of every parameter
whose name says it holds a secret (``password``, ``pwd``, ``pw``, ``token``, ``key``, ``auth``...)
is masked too, in the query (``?pw=...``) and in a path of parameters (Dahua's
``/user=admin_password=..._channel=1``), up to the next ``&`` or ``;`` or ``_name=`` (a ``/`` or
``#`` may be part of the password). A string without ``://`` (a video file path) is returned as
is.
"""

from __future__ import annotations

import re
from typing import overload

MASK = "***"
_SECRET_PARAM = re.compile(
    r"(?i)([?&;/_][^=&;#/?_]*(?:pass|pwd|pw|token|secret|auth|key|sig|cred)[^=&;#/?_]*=)"
    r"(.*?)(?=_[a-z][a-z0-9]*=|[&;]|$)"
)


@overload
def mask_url(url: str) -> str: ...
@overload
def mask_url(url: None) -> None: ...
@overload
def mask_url(url: str | None) -> str | None: ...
def mask_url(url: str | None) -> str | None:
    """``url`` with its password (and secret-looking parameter values) replaced by ``***``."""
    if not url or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    return _SECRET_PARAM.sub(rf"\g<1>{MASK}", f"{scheme}://{rest}")
