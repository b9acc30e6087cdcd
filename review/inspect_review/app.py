"""The review page as an ASGI application (Starlette, Jinja2 templates, served by uvicorn).

:func:`create_app` builds it for one records database. Pages are rendered on the server with
autoescaped templates; the package serves its own CSS and JavaScript (no build step, nothing
from a CDN), and a Content-Security-Policy allows nothing else. Every request but the login
page and the assets needs a session; every POST needs the session's CSRF token. Errors are
pages that say what went wrong and what to do, with the status that fits (400 a bad filter or
form, 403 a missing token or role, 404 an unknown item, 409 a decision taken meanwhile, 503
the database), and change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspect_core.errors import InspectError
from inspect_db.engine import connect
from inspect_db.errors import (
    BadFilter,
    DatabaseUnavailable,
    DatabaseUnreadable,
    DecisionConflict,
    ReviewError,
    SchemaOutdated,
    UnknownItem,
)
from inspect_review.auth import (
    SESSION_COOKIE,
    LoginBrake,
    Session,
    SessionStore,
    password_digest,
    same_token,
)
from inspect_review.storage.store import user_by_id
from inspect_review.storage.types import QueueFilters, UserView


class RowIdConvertor(IntegerConvertor):
    """``{id:rowid}`` in a route: a row id the database can hold (at most 18 digits, below
    BIGINT's limit); a longer one matches no route (404), never an overflow in SQL (500)."""

    regex = "[0-9]{1,18}"


register_url_convertor("rowid", RowIdConvertor())

HERE = Path(__file__).parent
MAX_BODY = 256 * 1024  # a decision form is a few kB (Starlette >= 1.6 refuses more: 413)
log = logging.getLogger("inspect.review")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class ReviewSettings:
    """How the page behaves: how often the queue asks for new items, whether cookies are
    marked Secure (behind an https proxy), how many items the queue lists, which folders the
    recorded pictures may be served from."""

    poll_seconds: float = 5.0
    secure_cookies: bool = False
    queue_limit: int = 200
    media_roots: tuple[str, ...] = ()  # folders pictures may be served from (none: any)


PASSWORD_CHECKS = 2  # at once: argon2 takes ~64 MiB and ~0.15 s of a core each


@dataclass
class ReviewState:
    """What every handler shares: the database, the sessions, the templates, the settings."""

    engine: Engine
    settings: ReviewSettings
    templates: Jinja2Templates
    sessions: SessionStore = field(default_factory=SessionStore)
    brake: LoginBrake = field(default_factory=LoginBrake)
    # made in the server's event loop on the first login (see password_checks)
    check_slots: asyncio.Semaphore | None = None
    login_waiting: int = 0  # logins queued for or in a password check

    def password_checks(self) -> asyncio.Semaphore:
        """The limit on password checks at once (:data:`PASSWORD_CHECKS`): a flood of logins
        (any names) waits its turn in the event loop instead of taking the threads and memory
        operators' pages need."""
        if self.check_slots is None:
            self.check_slots = asyncio.Semaphore(PASSWORD_CHECKS)
        return self.check_slots


def state(request: Request) -> ReviewState:
    st: ReviewState = request.app.state.review
    return st


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking database call off the event loop."""
    return await run_in_threadpool(fn, *args)


Handler = Callable[[Request], Awaitable[Response]]


def signed_in(role: str | None = None) -> Callable[[Handler], Handler]:
    """Handlers that need a session (and ``role``, if given): without one a GET goes to the
    login page and anything else is refused; a POST must carry the CSRF token."""

    def wrap(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            st = state(request)
            session = st.sessions.get(request.cookies.get(SESSION_COOKIE))
            user = await in_thread(_user_of, st, session)
            if session is None or user is None:
                if "application/json" in request.headers.get("accept", ""):
                    return JSONResponse(  # the queue's poll: it tells the operator
                        {"error": "your session ended: log in again"}, status_code=401
                    )
                if request.method == "GET":
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
                raise HTTPException(
                    403, "you are not logged in (or your session ended): log in again"
                )
            if role is not None and user.role != role:
                raise HTTPException(
                    403, f"this needs the {role} role; {user.name} is an {user.role}"
                )
            request.state.user, request.state.session = user, session
            if request.method == "POST":
                await check_csrf(request, session)
            return await handler(request)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


def _user_of(st: ReviewState, session: Session | None) -> UserView | None:
    if session is None:
        return None

    with connect(st.engine) as conn:
        user = user_by_id(conn, session.user_id)
    if (
        user is None
        or not user.active
        or (session.password and password_digest(user.password_hash) != session.password)
    ):  # gone, disabled, or a new password since the login
        st.sessions.drop(session.token)
        return None
    return user


async def check_csrf(request: Request, session: Session) -> None:
    """The POST's token (form field ``csrf`` or header ``X-CSRF-Token``) must be the
    session's; 403 otherwise, before anything is read or written."""
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not same_token(session.csrf, given):
        raise HTTPException(
            403,
            "the form was sent without its security token (CSRF), or with an old one: "
            "nothing was changed; reload the page and try again",
        )


def _quote(path: str) -> str:
    return quote(path, safe="")


def safe_next(target: str | None) -> str:
    """A place on this site to go after logging in: a local path, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    """A page with what every page shows: the user, the CSRF token (for logging out)."""
    st = state(request)
    session = getattr(request.state, "session", None)
    ctx = {
        "user": getattr(request.state, "user", None),
        "csrf": session.csrf if session else "",
        **ctx,
    }
    return st.templates.TemplateResponse(request, name, ctx, status_code=status)


def queue_filters(request: Request) -> QueueFilters:
    q = request.query_params
    return QueueFilters.parse(
        station=q.get("station"),
        recipe=q.get("recipe"),
        class_name=q.get("class"),
        since=q.get("since"),
        until=q.get("until"),
        status=q.get("status"),
    )


class SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every response; pages are not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: exception -> (status, title) of its error page
ERRORS: list[tuple[type[BaseException], int, str]] = [
    (UnknownItem, 404, "Not found"),
    (DecisionConflict, 409, "Decided meanwhile"),
    (BadFilter, 400, "Bad request"),
    (ReviewError, 400, "Bad request"),
    (DatabaseUnavailable, 503, "Database unavailable"),
    (SchemaOutdated, 503, "Database schema"),
    (DatabaseUnreadable, 503, "Database unreadable"),
    (InspectError, 500, "Error"),
]
#: what the page says of a database problem: its URL, host, port, user and file stay in the
#: server's log (a page may be read by anyone who can reach it)
DATABASE_MESSAGES: list[tuple[type[BaseException], str]] = [
    (
        DatabaseUnavailable,
        "the records database cannot be reached just now; nothing was changed: try again in a "
        "minute. If it lasts, tell whoever runs this server (its log says which database "
        "and why)",
    ),
    (
        SchemaOutdated,
        "the records database holds another schema version than this server expects; nothing "
        "was changed: tell whoever runs this server (its log says what to do), then try again",
    ),
    (
        DatabaseUnreadable,
        "the records database cannot be read (not a database, or damaged); nothing was "
        "changed: tell whoever runs this server (its log says which file and what to do), "
        "then try again",
    ),
]


def database_message(exc: BaseException) -> str | None:
    """What a page may say of ``exc`` when it is a database problem (the details go to the
    server's log); None for any other error."""
    for cls, message in DATABASE_MESSAGES:
        if isinstance(exc, cls):
            log.warning("review page: %s", exc)
            return message
    return None


TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
}


async def error_page(request: Request, exc: Exception) -> Response:
    """Every error as a page (JSON for the page's own fetch calls) with what to do."""
    if isinstance(exc, HTTPException):
        status, title, message = exc.status_code, TITLES.get(exc.status_code, "Error"), exc.detail
        if status == 404 and message == "Not Found":
            message = f"there is no page {request.url.path}; go back to the queue"
    else:
        status, title = next(
            ((s, t) for cls, s, t in ERRORS if isinstance(exc, cls)), (500, "Error")
        )
        message = database_message(exc) or str(exc)
        if status == 500:
            log.exception(
                "review page: %s %s failed", request.method, request.url.path, exc_info=exc
            )
            if not isinstance(exc, InspectError):
                message = (
                    "the server failed on this request (details in its log); nothing was changed"
                )
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"error": message}, status_code=status)
    templates = state(request).templates
    user = getattr(request.state, "user", None)
    session = getattr(request.state, "session", None)  # the header's "Log out" needs its token
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "status": status,
            "title": title,
            "message": message,
            "user": user,
            "csrf": session.csrf if session is not None else "",
        },
        status_code=status,
    )
