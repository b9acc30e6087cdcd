"""The review page's routes: logging in and out, the queue (and the rows that arrive while it
is open), the recorded images. The item page, its decision and the export are in
:mod:`inspect_review.item_pages`."""

from __future__ import annotations

from typing import Any, Literal, overload

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from inspect_db.engine import connect
from inspect_db.errors import UnknownItem
from inspect_review import item_pages
from inspect_review.app import (
    ReviewState,
    database_message,
    in_thread,
    page,
    queue_filters,
    safe_next,
    signed_in,
    state,
)
from inspect_review.auth import (
    LOGIN_COOKIE,
    NAME_KEY,
    SESSION_COOKIE,
    hash_password,
    new_token,
    password_digest,
    same_token,
    verify_password,
)
from inspect_review.media import load_picture, thumbnail
from inspect_review.storage.queue import (
    arrived_since,
    decided_since,
    filter_choices,
    last_inspection_id,
    last_review_id,
    media_paths,
    queue,
    queue_count,
)
from inspect_review.storage.store import get_user
from inspect_review.storage.types import Arrivals, Decided, UserView

ASSETS = ("review.css", "queue.js", "item.js", "draw.js", "picture.js")
MAX_LOGINS_WAITING = 32  # logins waiting for a password check; more are told to come back
_DUMMY_HASH: list[str] = []  # verified against when the name is unknown: the same time taken


# -- logging in ---------------------------------------------------------------------------


async def login_form(
    request: Request, error: str = "", status: int = 200, target: str | None = None
) -> Response:
    """The login form; ``target``: where to go after logging in (default: the ``next`` of the
    query string; a failed login passes the form's own, so a mistyped password keeps it)."""
    token = new_token()
    target = target or safe_next(request.query_params.get("next"))
    resp = page(
        request, "login.html", {"login_csrf": token, "next": target, "error": error}, status
    )
    resp.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=state(request).settings.secure_cookies,
        path="/login",
    )
    return resp


async def login(request: Request) -> Response:
    st = state(request)
    form = await request.form()
    if not same_token(request.cookies.get(LOGIN_COOKIE) or "", _text(form, "csrf")):
        raise HTTPException(
            403, "the login form was sent without its security token: reload it and log in again"
        )
    name, password = _text(form, "name").strip(), _text(form, "password")
    target = safe_next(_text(form, "next"))
    if st.login_waiting >= MAX_LOGINS_WAITING:  # a flood: refused before it is counted or queued
        return await login_form(
            request,
            "the server is busy checking passwords: try again in a few seconds",
            503,
            target,
        )
    wait = st.brake.try_start(name)  # counted as wrong until the password checks out
    if wait > 0:
        return await login_form(
            request,
            f"too many wrong passwords for {_shown(name)}: try again in {int(wait) + 1} s",
            429,
            target,
        )
    st.login_waiting += 1  # one event loop: no lock needed
    try:
        async with st.password_checks():  # ~64 MiB and a core each: a few at once, the rest wait
            user = await in_thread(_check_login, st, name, password)
    except Exception as e:  # no password was checked: not a wrong one
        st.brake.not_counted(name)
        down = database_message(e)
        if down is None:
            raise
        return await login_form(request, down, 503, target)
    finally:
        st.login_waiting -= 1
    if user is None:
        return await login_form(
            request, "wrong name or password (or the user is disabled)", 401, target
        )
    st.brake.succeeded(name)
    session = st.sessions.create(user.id, password_digest(user.password_hash))
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(st.sessions.hours * 3600),
        httponly=True,
        samesite="strict",
        secure=st.settings.secure_cookies,
        path="/",
    )
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    return resp


def _check_login(st: ReviewState, name: str, password: str) -> UserView | None:
    try:
        user: UserView | None = get_user(st.engine, name)
    except UnknownItem:
        user = None
    if user is None or not user.active:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password("not-a-password"))
        verify_password(_DUMMY_HASH[0], password)  # as slow as a real check
        return None
    return user if verify_password(user.password_hash, password) else None


def _shown(name: str) -> str:
    """A login name as a page repeats it: at most a user name's length."""
    return name if len(name) <= NAME_KEY else name[:NAME_KEY] + "..."


def _text(form: Any, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


@signed_in()
async def logout(request: Request) -> Response:
    state(request).sessions.drop(request.state.session.token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# -- the queue ----------------------------------------------------------------------------


@signed_in()
async def queue_page(request: Request) -> Response:
    st, f = state(request), queue_filters(request)

    def read() -> dict[str, Any]:
        with connect(st.engine) as conn:
            # the ids first: a row committed while the list is read is then asked for by the
            # page's first poll, never skipped
            last_id, last_review = last_inspection_id(conn), last_review_id(conn)
            stations, recipes, classes = filter_choices(conn)
            return {
                "items": queue(conn, f, st.settings.queue_limit),
                "count": queue_count(conn, f),
                "last_id": last_id,
                "last_review": last_review,
                "stations": stations,
                "recipes": recipes,
                "classes": classes,
                "saved": item_pages.read_saved(conn, request),
            }

    data = await in_thread(read)
    return page(
        request,
        "queue.html",
        {
            **data,
            "f": f,
            "query": f.as_query(),
            "poll_ms": int(st.settings.poll_seconds * 1000),
            "done": request.query_params.get("done", ""),
        },
    )


@signed_in()
async def queue_new(request: Request) -> Response:
    """The queue's rows recorded after ``after`` (the page asks every few seconds)."""
    st, f = state(request), queue_filters(request)
    after = _id_param(request, "after", "the last inspection id the page has seen")
    decided_after = _id_param(
        request, "decided_after", "the last decision id the page has seen", required=False
    )

    def read() -> tuple[Arrivals, int, Decided | None]:
        with connect(st.engine) as conn:
            decided = decided_since(conn, decided_after) if decided_after is not None else None
            return arrived_since(conn, f, after), queue_count(conn, f), decided

    arrived, count, decided = await in_thread(read)
    html = st.templates.get_template("_rows.html").render(items=arrived.items, query=f.as_query())
    out: dict[str, Any] = {
        "html": html,
        "n": len(arrived.items),
        "pending": count,
        "last": arrived.last,
    }
    if decided is not None:  # items decided since: the page marks them (or drops them)
        out["decided"] = [{"id": i, "verdict": v, "by": u} for i, v, u in decided.items]
        out["decided_last"] = decided.last
    return JSONResponse(out)


MAX_ID = 2**63 - 1  # the database's BIGINT


@overload
def _id_param(request: Request, name: str, what: str, required: Literal[True] = True) -> int: ...
@overload
def _id_param(request: Request, name: str, what: str, required: bool) -> int | None: ...
def _id_param(request: Request, name: str, what: str, required: bool = True) -> int | None:
    """The query parameter ``name`` as a row id (None when absent and not ``required``);
    HTTP 400 for anything that is not one."""
    text = request.query_params.get(name)
    if text is None and not required:
        return None
    try:
        value = int(text or "")
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_ID:
        raise HTTPException(400, f"{name}: give {what}")
    return value


# -- recorded images ----------------------------------------------------------------------


@signed_in()
async def media(request: Request) -> Response:
    """The recorded image or overlay of an inspection (only what the database names)."""
    st = state(request)
    iid, kind = request.path_params["id"], request.path_params["kind"]
    if kind not in ("image", "overlay"):
        raise HTTPException(404, f"no picture {kind!r}: use image or overlay")

    thumb = request.query_params.get("thumb") == "1"

    def read() -> Any:
        with connect(st.engine) as conn:
            source, overlay, sha256 = media_paths(conn, iid)
        roots = st.settings.media_roots
        if kind == "image":
            pic = load_picture(source, kind, roots, sha256)
        else:
            pic = load_picture(overlay, kind, roots)
        if thumb and kind == "overlay" and pic.missing:  # no overlay recorded (the stations'
            pic = load_picture(source, "image", roots, sha256)  # default) or gone: the image
        return thumbnail(pic) if thumb else pic

    pic = await in_thread(read)
    headers = {"Cache-Control": "private, max-age=60"}
    if pic.missing:
        headers["X-Review-Missing"] = pic.missing.encode("ascii", "replace").decode()
    return Response(pic.body, media_type=pic.media_type, headers=headers)


ROUTES = [
    Route("/", queue_page, methods=["GET"], name="queue"),
    Route("/login", login_form, methods=["GET"], name="login_form"),
    Route("/login", login, methods=["POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/queue/new", queue_new, methods=["GET"], name="queue_new"),
    Route("/media/{id:rowid}/{kind}", media, methods=["GET"], name="media"),
    *item_pages.ROUTES,
]
