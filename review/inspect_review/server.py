"""The review page put together: its pages (:mod:`inspect_review.pages`) on the shared parts of
:mod:`inspect_review.app` (state, errors, security headers), with its static files.

Kept apart from ``app`` so that the pages import the application's parts and the application
is built from the pages, with no import going back (no cycle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from inspect_core.errors import InspectError
from inspect_db.migrate import ensure_schema
from inspect_review import pages
from inspect_review.app import (
    ERRORS,
    HERE,
    MAX_BODY,
    ReviewSettings,
    ReviewState,
    SecurityHeaders,
    error_page,
)


def create_app(engine: Engine, settings: ReviewSettings | None = None) -> Starlette:
    """The review page for the records database of ``engine`` (its schema is checked, and an
    empty database migrated, when the server starts)."""
    ensure_schema(engine)  # an empty database is migrated, an outdated one refused
    static = HERE / "static"
    missing = [n for n in pages.ASSETS if not (static / n).is_file()]
    if missing:
        raise InspectError(
            f"the review page's files {missing} are missing from {static}: reinstall inspect "
            "(pip install inspect-review, or make dev in a checkout)"
        )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    routes = [*pages.ROUTES, Mount("/static", StaticFiles(directory=str(static)), name="static")]
    handlers: dict[Any, Callable[..., Any]] = {HTTPException: error_page, Exception: error_page}
    for cls, _, _ in ERRORS:
        handlers[cls] = error_page
    app = Starlette(routes=routes, exception_handlers=handlers, max_body_size=MAX_BODY)
    app.state.review = ReviewState(engine, settings or ReviewSettings(), templates)
    app.add_middleware(SecurityHeaders)
    return app
