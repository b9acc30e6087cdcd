"""``inspect demo``: one station per shipped recipe over its sample images, then the report.

In ``./demo-out`` (or ``--dir``), made afresh each run: for every recipe with sample images, a
folder station with its own inbox, archive (an overlay per image) and state folder, all
recording into one SQLite database (``demo.db``); each runs until its inbox is empty. Then
``inspect report`` prints the report and writes ``report.html``. The verdict of every sample is
compared with the one the recipe expects. The last lines name the folder and the commands to run
next: the review page on that database with a demo operator, the report again, and how to put
``inspect`` on PATH (:mod:`inspect_stations.demo_next`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import click

from inspect_core.errors import InspectError
from inspect_core.plugin_api.manager import Registry, get_registry
from inspect_core.runtime.recipe import Domain, Recipe
from inspect_stations.config.station import parse_config
from inspect_stations.demo_next import fresh_folder, next_steps
from inspect_stations.logs import setup_logging
from inspect_stations.pipeline.daemon import Station

DEFAULT_DIR = Path("demo-out")  # in the folder it runs in (git-ignored in the repository)


@dataclass
class DemoResult:
    workdir: Path
    db_url: str
    # name, recipe, images, verdicts, exit
    stations: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)  # station, image, expected, got
    report_html: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.stations) and all(s["exit"] == 0 for s in self.stations)

    @property
    def mismatches(self) -> list[dict[str, Any]]:
        return [s for s in self.samples if s["got"] != s["expected"]]


def _recipes(domains: Iterable[Domain]) -> list[tuple[str, Recipe]]:
    return [(d.name, r) for d in domains for r in d.recipes if r.samples]


def _filed_verdicts(archive: Path, quarantine: Path) -> dict[str, str]:
    """file name -> verdict folder it was filed into."""
    out = {}
    for p in archive.glob("*/*/*"):
        if p.parent.parent.name in ("PASS", "REVIEW", "FAIL", "ERROR"):
            out[p.name] = p.parent.parent.name
    for p in quarantine.glob("*/*"):
        if not p.name.endswith(".why.txt"):
            out[p.name] = "ERROR"
    return out


def run_demo(
    workdir: Path | None = None,
    keep: bool = True,
    domains: Iterable[Domain] | None = None,
    registry: Registry | None = None,
    echo: Callable[[str], None] = click.echo,
) -> DemoResult:
    """Run one station per recipe with samples (see the module docstring)."""
    reg = registry or get_registry()
    todo = _recipes(domains if domains is not None else reg.domains.values())
    if not todo:
        why = "; ".join(f"{f.plugin}: {f.reason}" for f in reg.failures)
        raise InspectError(
            "no installed recipe has sample images, so there is nothing to demo"
            + (f" (plugins that failed to load: {why})" if why else "; see `inspect plugins`")
        )
    workdir = fresh_folder(Path(workdir) if workdir else DEFAULT_DIR)
    db_url = f"sqlite:///{(workdir / 'demo.db').resolve()}"
    result = DemoResult(workdir, db_url)
    echo(f"demo in {workdir}: {len(todo)} station(s), database {db_url}")
    setup_logging(False, logging.WARNING)
    for domain, recipe in todo:
        _run_station(result, domain, recipe, reg, echo)
    for m in result.mismatches:
        echo(f"  note: {m['station']} {m['image']}: expected {m['expected']}, got {m['got']}")
    result.report_html = _report(result, echo)
    echo(f"report: {result.report_html}")
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
        return result
    root = _root_command()
    for line in next_steps(result, has_review="review" in root.commands):
        echo(line)
    return result


def _run_station(
    result: DemoResult, domain: str, recipe: Recipe, reg: Registry, echo: Callable[[str], None]
) -> None:
    """A folder station over the recipe's samples until its inbox is empty; what it filed
    where, in ``result``."""
    name = f"demo-{domain}-{recipe.name}"
    home = result.workdir / "stations" / name
    inbox = home / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for s in recipe.samples:
        shutil.copy2(s.image, inbox / s.image.name)
    cfg = parse_config(
        {
            "station": {
                "name": name,
                "plugin": domain,
                "recipe": recipe.name,
                "state_dir": "state",
                "until_empty": True,
                "flush_timeout_s": 30.0,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"url": result.db_url},
            "archive": {"path": "archive", "quarantine": "quarantine", "overlays": True},
        },
        home,
    )
    code = Station(cfg, recipe=recipe, registry=reg).run(install_signals=False)
    filed = _filed_verdicts(cfg.archive, cfg.quarantine)
    counts: dict[str, int] = {}
    for s in recipe.samples:
        got = filed.get(s.image.name, "missing")
        counts[got] = counts.get(got, 0) + 1
        result.samples.append(
            {"station": name, "image": s.image.name, "expected": s.expected, "got": got}
        )
    result.stations.append(
        {
            "name": name,
            "recipe": f"{domain}/{recipe.name}",
            "images": len(recipe.samples),
            "verdicts": counts,
            "exit": code,
        }
    )
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    echo(
        f"  {name}: {len(recipe.samples)} image(s): {summary}"
        + ("" if code == 0 else f" (station exited {code})")
    )


def _root_command() -> click.Group:
    """The ``inspect`` command this demo runs under (``inspect_core.cli.cli`` when it runs
    outside one), with the plugins' commands loaded."""
    # lazy: the application above this plugin (its root loads the plugins' commands on demand)
    from inspect_core.cli import InspectGroup, cli

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().command if ctx is not None else None
    group = root if isinstance(root, InspectGroup) else cli
    group.load_plugin_commands()
    return group


def _report(result: DemoResult, echo: Callable[[str], None]) -> Path:
    """``inspect report --db URL --html report.html``, or a short summary of our own."""
    html = result.workdir / "report.html"
    root = _root_command()
    if "report" in getattr(root, "commands", {}):
        root.main(
            ["report", "--db", result.db_url, "--html", str(html)],
            prog_name="inspect",
            standalone_mode=False,
        )
        return html
    echo("(the records plugin's `inspect report` is not installed; a short summary instead)")
    rows = []
    for s in result.stations:
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items()))
        echo(f"  {s['name']:40} {s['images']:4d} images  {verdicts}")
        rows.append(
            f"<tr><td>{escape(s['name'])}</td><td>{s['images']}</td>"
            f"<td>{escape(verdicts)}</td></tr>"
        )
    html.write_text(
        "<!doctype html><meta charset=utf-8><title>inspect demo</title>"
        "<h1>inspect demo</h1><table border=1><tr><th>station</th><th>images</th>"
        f"<th>verdicts</th></tr>{''.join(rows)}</table>\n"
    )
    return html
