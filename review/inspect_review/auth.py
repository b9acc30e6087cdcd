"""Who may use the review page: password hashes (argon2id, argon2-cffi), sessions, CSRF tokens
and a brake on password guessing.

A session is a random token in a cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` when
served over https) that maps, in the server's memory, to a user id and the session's CSRF
token; restarting the server logs everyone out. Every state-changing request (every POST)
must carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``); the login
form, which has no session yet, carries a token that must match its own cookie (double
submit). The user row is read again on every request, so a disabled user is out at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from inspect_core.errors import InspectError

SESSION_COOKIE = "inspect_review"
LOGIN_COOKIE = "inspect_review_login"
SESSION_HOURS = 12.0  # a shift and some; then log in again
MIN_PASSWORD = 8
FAILURES_ALLOWED = 5  # wrong passwords per user name ...
FAILURE_WINDOW_S = 300.0  # ... within this long, then that name waits out the window


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with its salt and parameters (argon2-cffi's defaults:
    RFC 9106 low-memory profile)."""
    from argon2 import PasswordHasher  # lazy: the review extra, checked by extra.require

    check_password(password)
    return PasswordHasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (False for a damaged hash too)."""
    # lazy: the review extra, checked by extra.require before a command needs it
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return PasswordHasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InspectError(
            f"the password has {len(password)} characters; give at least {MIN_PASSWORD}"
        )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token (False for a missing one)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


@dataclass
class Session:
    token: str
    user_id: int
    csrf: str
    expires: float  # time.monotonic() at which it ends
    password: str = ""  # password_digest() of the user's hash at login: a new password ends it


def password_digest(password_hash: str) -> str:
    """A short digest of a stored password hash, kept in a session instead of the hash."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


@dataclass
class SessionStore:
    """Sessions of one server process, thread-safe."""

    hours: float = SESSION_HOURS
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, user_id: int, password: str = "") -> Session:
        """A new session of ``user_id``; ``password``: :func:`password_digest` of the user's
        password hash now (a session outlives no password change)."""
        end = time.monotonic() + self.hours * 3600
        s = Session(new_token(), user_id, new_token(), end, password)
        with self._lock:
            self._sessions[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._sessions.get(token)
            if s is not None and s.expires < time.monotonic():
                del self._sessions[token]
                return None
            return s

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


MAX_NAMES = 10_000  # names whose failures the brake remembers (beyond: unlocked ones go)
NAME_KEY = 64  # a user name's longest (longer ones are kept as a prefix and a hash)


def brake_key(name: str) -> str:
    """What the brake keeps of a login name: the name itself when it could be a user's, else
    its start and a hash of the whole (bounded memory whatever is typed, still one key per
    name)."""
    if len(name) <= NAME_KEY:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{name[:24]}~{digest}"


@dataclass
class LoginBrake:
    """After :data:`FAILURES_ALLOWED` wrong passwords for one name within
    :data:`FAILURE_WINDOW_S`, that name is refused until the window has passed."""

    _failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _full_at: int = 0  # table size at which to scan again when only locked names were left

    def _recent(self, name: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(name, []) if now - t < FAILURE_WINDOW_S]
        self._failures[name] = kept
        return kept

    def try_start(self, name: str) -> float:
        """One login attempt for ``name``: 0 when it may go ahead, counted as a wrong password
        until :meth:`succeeded` says otherwise (so attempts sent all at once, each waiting for
        the slow password check, cannot get past the limit); else how long it must wait."""
        now, name = time.monotonic(), brake_key(name)
        with self._lock:
            recent = self._recent(name, now)
            if len(recent) >= FAILURES_ALLOWED:
                return max(0.0, FAILURE_WINDOW_S - (now - recent[0]))
            recent.append(now)
            if len(self._failures) > max(MAX_NAMES, self._full_at):
                self._forget(now, name)
            return 0.0

    def _forget(self, now: float, keep: str) -> None:
        """Forget the names that are not locked out (oldest first, never ``keep``, the name
        being tried) until at most :data:`MAX_NAMES` are left. A locked name is never
        forgotten before its window ends: a flood of other names must not unlock the one under
        attack. When only locked names are left the table grows (each took five attempts), and
        the next scan waits until it has grown by a tenth, so a flood costs no scan per try."""
        for n in list(self._failures):
            if len(self._failures) <= MAX_NAMES:
                break
            if n == keep:
                continue
            recent = [t for t in self._failures[n] if now - t < FAILURE_WINDOW_S]
            if len(recent) < FAILURES_ALLOWED:
                del self._failures[n]
        self._full_at = (
            len(self._failures) + MAX_NAMES // 10 if len(self._failures) > MAX_NAMES else 0
        )

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(brake_key(name), None)

    def not_counted(self, name: str) -> None:
        """The attempt :meth:`try_start` counted never had its password checked (the
        database was down): it is no wrong password."""
        with self._lock:
            recent = self._failures.get(brake_key(name))
            if recent:
                recent.pop()
