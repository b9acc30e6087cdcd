"""``inspect review serve | export | user ...``: the review page, the reviewed images as a
dataset, and the people who may decide.

Exit codes: 0 done, 2 a bad option or a request that cannot be carried out (the message says
why; nothing was changed)."""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from inspect_core.errors import InspectError

if TYPE_CHECKING:  # SQLAlchemy loads when a command runs
    from sqlalchemy.engine import Engine

    from inspect_review.export import ExportSummary

DB_HELP = "Records database URL (default $INSPECT_DATABASE_URL or sqlite:///inspect.db)."


@click.group("review")
def review_group() -> None:
    """Operator review in the browser, and reviewed images as training data."""


def _engine(url: str | None, *, create: bool = False) -> Engine:
    """The records database. Only ``user add`` (``create``: a writer's first use) may create
    and migrate a new one; every other command needs an existing one with inspect's schema,
    so that a mistyped --db is one line naming the file and creates nothing."""
    from inspect_db.engine import make_engine
    from inspect_db.migrate import ensure_schema

    engine = make_engine(url, existing=not create)
    try:
        ensure_schema(engine, migrate_empty=create)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Fail now, with a message, when the address cannot be served (uvicorn would log it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise InspectError(
                f"cannot serve on {host}:{port} ({e.strerror or e}); is another review page "
                "running there? give another --port, or --host an address of this machine"
            ) from None


@review_group.command("serve")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Only this machine can reach 127.0.0.1; give another address "
    "(e.g. 0.0.0.0) only behind https, with --secure-cookies.",
)
@click.option("--port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--poll-seconds",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.2, 3600),
    help="How often an open queue asks for new items.",
)
@click.option(
    "--secure-cookies", is_flag=True, help="Mark the session cookie Secure (served over https)."
)
@click.option(
    "--media-root",
    "media_roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="A folder the recorded images and overlays may be served from (repeat for more: the "
    "stations' archive folders). Without one, any path the database records is served; give "
    "them where others can write inspection rows.",
)
def serve(
    url: str | None,
    host: str,
    port: int,
    poll_seconds: float,
    secure_cookies: bool,
    media_roots: tuple[str, ...],
) -> None:
    """Serve the review queue: REVIEW first, then FAIL, newest first; decide from the keyboard.

    \b
    inspect review user add alice --role operator      # once
    inspect review serve --db sqlite:///line1.db       # then open http://127.0.0.1:8600
    """
    from inspect_review.extra import require

    require()
    import uvicorn

    from inspect_db.engine import safe_url
    from inspect_review.app import ReviewSettings
    from inspect_review.server import create_app
    from inspect_review.storage.store import list_users

    engine = _engine(url)
    roots = tuple(str(r) for r in media_roots)
    app = create_app(engine, ReviewSettings(poll_seconds, secure_cookies, media_roots=roots))
    if not any(u.active for u in list_users(engine)):
        click.echo(
            "warning: no review user yet: add one with `inspect review user add NAME --role "
            "operator` (the page needs a login)",
            err=True,
        )
    if not _loopback(host):
        click.echo(
            f"warning: serving on {host}: anyone who can reach this address can try to log "
            "in; serve it behind https and give --secure-cookies",
            err=True,
        )
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"review page: http://{shown}:{port}/  (database {safe_url(engine.url)}; Ctrl+C stops)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@review_group.command("export")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Dataset folder (new or empty)."
)
@click.option("--since", default=None, help="Decisions made since: 7d, 24h or an ISO date/time.")
@click.option("--until", default=None, help="Decisions made before this (same forms).")
@click.option("--station", default=None, help="Only this station's images.")
@click.option("--recipe", default=None, help="Only this recipe's images (one class list).")
@click.option(
    "--val-share",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 0.9),
    help="Hold out the newest whole station-days, about this share of the images, as val/ "
    "(0: everything in train/, and `inspect train` holds out whole groups itself).",
)
@click.option(
    "--media-root",
    "media_roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="A folder the recorded images may be read from (repeat for more: the stations' "
    "archive folders); an image elsewhere is skipped and listed. Without one, any path the "
    "database records is read.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export(
    url: str | None,
    out: str,
    since: str | None,
    until: str | None,
    station: str | None,
    recipe: str | None,
    val_share: float,
    media_roots: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write the reviewed images as a training dataset (classes.json, train/images, masks).

    Regions marked "not a defect" become background, confirmed regions keep their (possibly
    corrected) class, regions the operators drew are filled with theirs (names they gave get
    indices after the recipe's classes), pixels no one judged are 255 (ignored); an image
    decided PASS with no defect left is all background. A good-only recipe's export holds the
    classes operators named and the good images; an image whose defect is still "anomaly" is
    left out (counted and listed). Then fine-tune:
    inspect train --data OUT --out runs/ft --init-from PLUGIN:RECIPE
    """
    from inspect_review.export import export_dataset
    from inspect_review.storage.export import ExportFilters

    filters = ExportFilters.parse(since, until, station, recipe)
    engine = _engine(url)
    say = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    try:
        summary = export_dataset(
            engine,
            out,
            filters,
            val_share,
            log=lambda m: say(_plain(m)),
            media_roots=tuple(str(r) for r in media_roots),
        )
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(asdict(summary), indent=2) + "\n")
        return
    for line in _summary_lines(summary, out):
        say(_plain(line))


def _summary_lines(summary: ExportSummary, out: str) -> list[str]:
    """What ``inspect review export`` says it wrote, skipped and left out, and what next."""
    from inspect_review.export import GROUPS

    splits = ", ".join(f"{k} {v}" for k, v in sorted(summary.splits.items()))
    lines = [
        f"wrote {summary.images} reviewed images to {out} ({splits}); classes "
        f"{', '.join(summary.classes)}; groups (station, day) by {GROUPS!r}"
    ]
    files = len(summary.skipped) - summary.unnamed
    if files:
        lines.append(
            f"skipped {files} whose files are gone, unreadable, outside --media-root or not the "
            "recorded images (listed with why in export.json)"
        )
    if summary.unnamed:
        lines.append(
            f"left out {summary.unnamed} whose defects are not named (still 'anomaly', or FAIL "
            "with none named; listed with why in export.json): name them on the review page and "
            "export again"
        )
    lines.append(
        f"fine-tune on them: inspect train --data {out} --out runs/reviewed "
        "--init-from PLUGIN:RECIPE"
    )
    return lines


def _plain(text: str) -> str:
    from inspect_core.text import terminal_text

    return terminal_text(text)


@review_group.group("user")
def user_group() -> None:
    """The people who may use the review page: operators decide, engineers also export."""


def _password(stdin: bool) -> str:
    if stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


def _hash(password: str) -> str:
    from inspect_review.extra import require

    require("argon2")
    from inspect_review.auth import hash_password

    return hash_password(password)


@user_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["operator", "engineer"]))
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
def user_add(name: str, role: str, url: str | None, password_stdin: bool) -> None:
    """Add a user NAME who may log in (asks for the password twice)."""
    from inspect_db.engine import created_note, will_create
    from inspect_review.storage.store import add_user, check_user_name

    check_user_name(name)
    fresh = will_create(url)
    engine = _engine(url, create=True)
    try:
        user = add_user(engine, name, role, _hash(_password(password_stdin)))
    finally:
        engine.dispose()
    click.echo(f"added {user.role} {user.name}")
    if fresh is not None:
        click.echo(created_note(fresh), err=True)


@user_group.command("passwd")
@click.argument("name")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
def user_passwd(name: str, url: str | None, password_stdin: bool) -> None:
    """Give user NAME a new password."""
    from inspect_review.storage.store import get_user, set_password

    engine = _engine(url)
    try:
        get_user(engine, name)
        set_password(engine, name, _hash(_password(password_stdin)))
    finally:
        engine.dispose()
    click.echo(f"changed the password of {name}")


@user_group.command("disable")
@click.argument("name")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
def user_disable(name: str, url: str | None, enable: bool) -> None:
    """Stop user NAME from logging in (their decisions stay, with their name)."""
    from inspect_review.storage.store import set_disabled

    engine = _engine(url)
    try:
        set_disabled(engine, name, not enable)
    finally:
        engine.dispose()
    click.echo(f"{'enabled' if enable else 'disabled'} {name}")


@user_group.command("list")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
def user_list(url: str | None, as_json: bool) -> None:
    """The users, their roles and whether they may log in."""
    from inspect_db.reports.filters import iso
    from inspect_review.storage.store import list_users

    engine = _engine(url)
    try:
        users = list_users(engine)
    finally:
        engine.dispose()
    rows = [
        {"name": u.name, "role": u.role, "created_at": iso(u.created_at), "active": u.active}
        for u in users
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    for r in rows:
        state = "" if r["active"] else "  (disabled)"
        click.echo(_plain(f"{r['name']:<20} {r['role']:<9} since {r['created_at']}{state}"))
    if not rows:
        click.echo("no users; add one with: inspect review user add NAME --role operator")
