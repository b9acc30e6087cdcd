"""``inspect station run | check | status | replay`` and ``inspect demo``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from inspect_core.errors import InspectError

if TYPE_CHECKING:  # the station's modules load when a command runs
    from click.decorators import FC

    from inspect_stations.config.station import StationConfig


def _folder_option(*decls: str, help: str) -> Callable[[FC], FC]:
    """An option that names a folder (none by default)."""
    return click.option(*decls, type=click.Path(file_okay=False), default=None, help=help)


@click.group("station")
def station_group() -> None:
    """Run an inspection station on the line: a folder or camera source, records, archive."""


@station_group.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--plugin", help="Shortcut without a config file: plugin (or domain) name.")
@click.option("--recipe", "recipe_name", help="Shortcut: recipe of the plugin.")
@_folder_option("--watch", help="Shortcut: the inbox folder.")
@click.option(
    "--db",
    default=None,
    help="Shortcut: database URL (default INSPECT_DATABASE_URL or sqlite:///inspect.db).",
)
@click.option("--name", default=None, help="Shortcut: station name (default PLUGIN-RECIPE).")
@_folder_option("--archive", help="Shortcut: archive folder (default: 'archive' beside the inbox).")
@_folder_option(
    "--state-dir",
    help="Journal and status folder (default: station.state_dir, or beside the inbox).",
)
@click.option(
    "--stable-s",
    type=float,
    default=None,
    help="Seconds a file must stay unchanged before it is taken.",
)
@click.option(
    "--until-empty",
    is_flag=True,
    help="Stop once the source has nothing more to give "
    "(a batch run) instead of waiting for new images.",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line (for log shippers).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run_cmd(
    config: str | None,
    plugin: str | None,
    recipe_name: str | None,
    watch: str | None,
    db: str | None,
    name: str | None,
    archive: str | None,
    state_dir: str | None,
    stable_s: float | None,
    until_empty: bool,
    log_json: bool,
    verbose: bool,
) -> None:
    """Run a station from CONFIG (TOML), or from --plugin/--recipe/--watch [--db].

    Stops cleanly on SIGTERM or Ctrl-C (finishes the images in hand, flushes, exits 0).
    """
    import logging

    from inspect_stations.logs import setup_logging
    from inspect_stations.pipeline.daemon import Station

    if config and (plugin or recipe_name or watch):
        raise click.UsageError("give either CONFIG or --plugin/--recipe/--watch, not both")
    if config:
        cfg = _config_with_options(config, state_dir, stable_s, db)
    elif plugin and recipe_name and watch:
        cfg = _shortcut(plugin, recipe_name, watch, db, name, archive, state_dir, stable_s)
    else:
        raise click.UsageError(
            "give a CONFIG.toml, or --plugin P --recipe R --watch DIR "
            "(see `inspect station run --help`)"
        )
    cfg.until_empty = cfg.until_empty or until_empty
    setup_logging(log_json or cfg.log_json, logging.DEBUG if verbose else logging.INFO)
    if cfg.folder is not None and not cfg.folder.path.is_dir():
        raise InspectError(
            f"watched folder {cfg.folder.path} does not exist (source.path); "
            "create it or fix the path"
        )
    code = Station(cfg).run()
    sys.exit(code)


def _config_with_options(
    config: str, state_dir: str | None, stable_s: float | None, db: str | None
) -> StationConfig:
    """CONFIG with the command line's --state-dir, --stable-s and --db in place of its own."""
    from inspect_stations.config.station import load_config

    cfg = load_config(config)
    if state_dir:
        cfg.state_dir = Path(state_dir).resolve()
    if stable_s is not None and cfg.folder is not None:
        cfg.folder.stable_s = cfg.source["stable_s"] = stable_s  # the source reads its table
    if db:
        cfg.database_url = db
    return cfg


def _shortcut(
    plugin: str,
    recipe_name: str,
    watch: str,
    db: str | None,
    name: str | None,
    archive: str | None,
    state_dir: str | None,
    stable_s: float | None,
) -> StationConfig:
    """The configuration of --plugin/--recipe/--watch: folders beside the watched one."""
    from inspect_stations.config.station import shortcut_config

    if not Path(watch).is_dir():
        raise InspectError(f"--watch {watch}: folder not found; create it or fix the path")
    stable_s = 1.0 if stable_s is None else stable_s
    return shortcut_config(plugin, recipe_name, watch, db, name, archive, state_dir, stable_s)


@station_group.command("check")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print {ok, problems: [{key, message}]}.")
def check_cmd(config: str, as_json: bool) -> None:
    """Validate CONFIG and report every problem with its key. Exit 0 when it is fine, 2 if not."""
    from inspect_stations.config.check import check_file

    cfg, problems = check_file(config)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": not problems,
                    "config": str(config),
                    "problems": [{"key": k, "message": m} for k, m in problems],
                },
                indent=2,
            )
        )
    elif problems:
        click.secho(
            f"{config}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:",
            fg="red",
            err=True,
        )
        for k, m in problems:
            click.echo(f"  {k}: {m}" if k else f"  {m}", err=True)
    elif cfg is not None:  # no problem found: check_file gives the config
        from inspect_stations.urls import mask_url

        src = (
            cfg.folder.path
            if cfg.folder
            else (
                mask_url(cfg.camera.url) or f"camera {cfg.camera.device}"
                if cfg.camera
                else cfg.source_type
            )
        )
        recipe = cfg.recipe or (cfg.recipe_file.stem if cfg.recipe_file else "")
        click.secho(
            f"{config}: OK - station {cfg.name}, {cfg.plugin}/{recipe}, "
            f"source {src}, archive {cfg.archive}",
            fg="green",
        )
    sys.exit(2 if problems else 0)


def _config_or_state_dir(command: FC) -> FC:
    """CONFIG or --state-dir: how ``status`` and ``replay`` find a station's state folder."""
    command = _folder_option("--state-dir", help="The station's state folder (instead of CONFIG).")(
        command
    )
    return click.argument("config", required=False, type=click.Path(dir_okay=False))(command)


@station_group.command("status")
@_config_or_state_dir
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(config: str | None, state_dir: str | Path | None, as_json: bool) -> None:
    """Show a station's queue depth, images/min, last verdicts and errors, and the results a
    sink refused (dead letters).

    Exit code 0 when it is running, 1 when it is not, 2 when its status cannot be read.
    """
    from inspect_stations.pipeline.journal import read_dead_letters
    from inspect_stations.pipeline.status import format_status, read_status

    state_dir = _state_dir(config, state_dir)
    data = read_status(state_dir)
    dead = read_dead_letters(state_dir)  # now, also for a stopped station or after a replay
    if dead is not None:
        data["dead_letters"] = dead.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(format_status(data))
    sys.exit(0 if data.get("running") else 1)


def _state_dir(config: str | None, state_dir: str | Path | None) -> Path:
    """The state folder given, or the one CONFIG names: read on its own, so that a config the
    station now refuses (an inbox with junk in it, a key it does not know) still shows."""
    if state_dir is not None:
        return Path(state_dir)
    if config is None:
        raise click.UsageError("give the station's CONFIG.toml or --state-dir")
    from inspect_stations.config.station import state_dir_of

    return state_dir_of(config)


@station_group.command("replay")
@_config_or_state_dir
@click.option("--sink", default=None, help="Only the dead letters of this sink (e.g. sql).")
def replay_cmd(config: str | None, state_dir: str | Path | None, sink: str | None) -> None:
    """Put the results a sink refused (dead letters) back in line, after fixing the cause.

    The running station writes them within journal_retry_s, a stopped one at its next start,
    ahead of newer results. One still refused is set aside again, with its reason.
    """
    from inspect_stations.pipeline.journal import Journal

    state_dir = _state_dir(config, state_dir)
    path = state_dir / "journal.sqlite"
    if not path.is_file():
        raise InspectError(
            f"no station journal in {state_dir} (journal.sqlite not found): the "
            "station has not run with this state folder yet"
        )
    journal = Journal(path)
    try:
        dead = journal.dead_letters()
        n = journal.replay_dead(sink)
    finally:
        journal.close()
    if not n:
        click.echo("no dead letters" + (f" of sink {sink}" if sink else "") + f" in {path}")
        return
    click.echo(
        f"{n} result(s) put back in line in {path} (were: "
        + ", ".join(f"{k} {v}" for k, v in sorted(dead.by_sink.items()))
        + "); the "
        "running station writes them within journal_retry_s, a stopped one at its next "
        "start. Check `inspect station status`: one still refused is set aside again"
    )


@click.command("demo")
@_folder_option(
    "--dir",
    "workdir",
    help="Folder to set the demo up in (default: ./demo-out); a run empties the folder an "
    "earlier run made, and refuses any other folder that is not empty.",
)
@click.option(
    "--keep/--no-keep",
    default=True,
    show_default=True,
    help="Keep the folder (database, archive, report.html) afterwards.",
)
def demo_cmd(workdir: str | None, keep: bool) -> None:
    """One station per shipped recipe over its sample images into ./demo-out: the records in
    SQLite, an overlay per image, the report, and the commands to run next."""
    from inspect_stations.demo import run_demo

    result = run_demo(Path(workdir) if workdir else None, keep=keep)
    sys.exit(0 if result.ok else 1)
