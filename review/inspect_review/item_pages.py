"""The item page (image, overlay, regions, the regions operators drew, rules that fired,
earlier decisions), the decision it posts (with what the operator drew), the undo of a decision
just saved, the step to the next item, and the engineers' export download.

After a decision the next page (the next item, or the queue) confirms it: the redirect carries
``saved=<review id>`` and the page says ``Saved: PASS for <image>`` with an Undo button while
the decision can still be undone (:mod:`inspect_review.storage.undo`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import Connection
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from inspect_db.engine import connect
from inspect_db.errors import ReviewError
from inspect_review.app import in_thread, page, queue_filters, signed_in, state
from inspect_review.drawn import draw_data, parse_marks
from inspect_review.export import export_dataset
from inspect_review.labels import choosable, class_list, preset_choices, resolve
from inspect_review.media import within
from inspect_review.storage.export import ExportFilters
from inspect_review.storage.marks import given_names
from inspect_review.storage.queue import item, next_item, queue_count
from inspect_review.storage.store import record_decision
from inspect_review.storage.types import DecisionIn, ItemView, QueueFilters, SavedView
from inspect_review.storage.undo import image_name, record_undo, saved_decision
from inspect_review.verdict_text import verdict_text


def _where(path: str, f: QueueFilters, **extra: Any) -> str:
    query = {**f.as_query(), **{k: v for k, v in extra.items() if v not in (None, "")}}
    return path + (f"?{urlencode(query)}" if query else "")


def saved_id(request: Request) -> int | None:
    """The ``saved`` query parameter: the decision the page confirms (None when absent or not
    a row id; it only adds a confirmation, so a bad one is ignored)."""
    text = request.query_params.get("saved", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def read_saved(conn: Connection, request: Request) -> SavedView | None:
    """The decision the page confirms to its user (see :func:`saved_id`)."""
    rid = saved_id(request)
    return None if rid is None else saved_decision(conn, rid, request.state.user.id)


@signed_in()
async def item_page(request: Request) -> Response:
    st, f = state(request), queue_filters(request)
    iid = request.path_params["id"]

    def read() -> tuple[ItemView, list[str], int, bool, SavedView | None]:
        with connect(st.engine) as conn:
            view = item(conn, iid)
            classes = class_list(view.plugin, view.recipe, view.card_classes)
            return (
                view,
                choosable(view, classes, given_names(conn, view.plugin, view.recipe)),
                queue_count(conn, f),
                # the overlay's size is the frame the regions are in (a resizing recipe);
                # without one the regions are in the image's own frame
                _frame_of(view.overlay_path, st.settings.media_roots),
                read_saved(conn, request),
            )

    view, offered, pending, overlay_frame, saved = await in_thread(read)
    latest = view.latest
    return page(
        request,
        "item.html",
        {
            "item": view,
            "overlay_frame": overlay_frame,
            "classes": offered,
            "preset": preset_choices(view),
            "numbers": {r.id: r.number for r in view.regions},
            "draw": asdict(draw_data(view, offered)),
            "in_force": view.in_force,
            "undone": view.undone,
            "undo_row": latest if latest is not None and latest.undo else None,
            "seen": latest.id if latest else "",
            "why": verdict_text(view),
            "image": image_name(view.source),
            "saved": saved,
            "pending": pending,
            "f": f,
            "query": f.as_query(),
            "queue_url": _where("/", f),
            "next_url": _where(f"/item/{iid}/next", f),
        },
    )


def _frame_of(overlay: str | None, roots: tuple[str, ...]) -> bool:
    """Whether the page may size the outlines by the recorded overlay: there is one, the page
    serves it (inside ``roots`` when given) and it is a file."""
    if not overlay:
        return False
    path = within(overlay, roots) if roots else overlay
    try:
        return path is not None and os.path.isfile(path)
    except ValueError:  # a NUL byte in a recorded path
        return False


@signed_in()
async def decide(request: Request) -> Response:
    """Record the operator's decision, then go to the next item of the same queue."""
    st, f = state(request), queue_filters(request)
    iid = request.path_params["id"]
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    verdict = values.get("verdict", "").strip().upper()
    if verdict not in ("PASS", "FAIL"):
        raise ReviewError(f"verdict {verdict[:20]!r}: decide PASS or FAIL")
    seen_text = values.get("seen", "").strip()
    if seen_text and not (seen_text.isascii() and seen_text.isdigit() and len(seen_text) < 19):
        raise ReviewError(f"seen {seen_text[:20]!r}: not a decision id; reload the item")
    user = request.state.user

    def write() -> tuple[int, int | None]:
        with connect(st.engine) as conn:
            view = item(conn, iid)
            given = given_names(conn, view.plugin, view.recipe)
        classes = class_list(view.plugin, view.recipe, view.card_classes)
        offered = choosable(view, classes, given)
        marks = parse_marks(values.get("marks", ""), view, classes, offered)
        rid = record_decision(
            st.engine,
            DecisionIn(
                iid,
                user.id,
                verdict,
                resolve(view, verdict, values, classes, marks, given),
                values.get("note", "").replace("\r\n", "\n").strip(),  # a browser sends CRLF
                int(seen_text) if seen_text else None,
                marks,
            ),
        )
        with connect(st.engine) as conn:
            return rid, next_item(conn, f, iid)

    rid, nxt = await in_thread(write)
    target = (
        _where(f"/item/{nxt}", f, saved=rid)
        if nxt is not None
        else _where("/", f, done=iid, saved=rid)
    )
    return RedirectResponse(target, status_code=303)


@signed_in()
async def undo(request: Request) -> Response:
    """Undo the operator's decision ``review`` on this item (a new row: nothing is deleted),
    then show the item again, pending, to decide anew."""
    st, f = state(request), queue_filters(request)
    iid = request.path_params["id"]
    form = await request.form()
    text = form.get("review")
    text = text.strip() if isinstance(text, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        raise ReviewError(f"review {text[:20]!r}: not a decision id; reload the page")
    await in_thread(record_undo, st.engine, iid, int(text), request.state.user.id)
    return RedirectResponse(_where(f"/item/{iid}", f), status_code=303)


@signed_in()
async def skip(request: Request) -> Response:
    """The next item after this one in the queue (N): nothing is recorded."""
    st, f = state(request), queue_filters(request)
    iid = request.path_params["id"]

    def read() -> int | None:
        with connect(st.engine) as conn:
            return next_item(conn, f, iid)

    nxt = await in_thread(read)
    target = _where(f"/item/{nxt}", f) if nxt not in (None, iid) else _where("/", f)
    return RedirectResponse(target, status_code=303)


# -- export (engineers) -------------------------------------------------------------------


@signed_in(role="engineer")
async def export_form(request: Request) -> Response:
    return page(request, "export.html", {"error": ""})


@signed_in(role="engineer")
async def export_zip(request: Request) -> Response:
    """The reviewed images as a dataset (``inspect review export``), zipped for download."""
    st = state(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    filters = ExportFilters.parse(
        since=form.get("since") or None,
        station=form.get("station") or None,
        recipe=form.get("recipe") or None,
    )
    try:
        share = float(form.get("val_share") or 0)
    except ValueError:
        raise ReviewError(
            f"val share {form.get('val_share', '')[:20]!r}: give a number such as 0.2"
        ) from None
    work = Path(tempfile.mkdtemp(prefix="inspect-review-export-"))

    def build() -> Path:
        try:
            export_dataset(
                st.engine, work / "dataset", filters, share, media_roots=st.settings.media_roots
            )
            return Path(shutil.make_archive(str(work / "reviewed"), "zip", work / "dataset"))
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    archive = await in_thread(build)
    return FileResponse(
        archive,
        media_type="application/zip",
        filename="reviewed-dataset.zip",
        background=BackgroundTask(shutil.rmtree, work, True),
    )


ROUTES = [
    Route("/item/{id:rowid}", item_page, methods=["GET"], name="item"),
    Route("/item/{id:rowid}/decide", decide, methods=["POST"], name="decide"),
    Route("/item/{id:rowid}/undo", undo, methods=["POST"], name="undo"),
    Route("/item/{id:rowid}/next", skip, methods=["GET"], name="next"),
    Route("/export", export_form, methods=["GET"], name="export_form"),
    Route("/export", export_zip, methods=["POST"], name="export"),
]
