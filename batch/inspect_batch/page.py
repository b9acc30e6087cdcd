"""The HTML page of a backtest: its numbers (verdicts, latency against the records', agreement
with the operators), and the images whose verdict changes with the recorded overlay beside the
candidate's and why each changed. Server-rendered and self-contained: the overlays are written
into a folder beside the page (``NAME_files/``); every text is escaped."""

from __future__ import annotations

import shutil
from html import escape
from pathlib import Path
from typing import Any

from inspect_batch import page_sections as sec
from inspect_batch.compare import VERDICTS
from inspect_batch.result import BacktestResult, Changed

STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em}
.pair{display:flex;gap:1em;margin:1em 0;align-items:flex-start}
.pair figure{margin:0}.pair img{max-width:420px;max-height:420px;border:1px solid #999}
.why ul{margin:.3em 0;padding-left:1.2em}
.PASS{color:#1a7f37}.REVIEW{color:#9a6700}.FAIL{color:#cf222e}"""


def write_page(path: Path, result: BacktestResult, meta: dict[str, Any]) -> Path:
    """Write the page to ``path`` and its overlays to ``path``'s ``_files`` folder."""
    files = path.with_name(path.stem + "_files")
    files.mkdir(parents=True, exist_ok=True)
    pairs = "".join(_pair(i, c, files) for i, c in enumerate(result.changed_images))
    more = result.changed - len(result.changed_images)
    tail = f"<p>... and {more} more changed images (not shown)</p>" if more > 0 else ""
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>backtest</title>'
        f"<style>{STYLE}</style></head><body>{_head(result, meta)}"
        f"{sec.latency(result)}{sec.operators(result)}<h2>Changed verdicts</h2>"
        f"{sec.why_classes(result)}{pairs or '<p>none</p>'}{tail}</body></html>"
    )
    path.write_text(html, encoding="utf-8")
    return path


def _head(r: BacktestResult, meta: dict[str, Any]) -> str:
    """The title, the candidate and window, the counts and the confusion matrix."""
    rows = "".join(
        f"<tr><th>{sec.v(a)}</th>"
        + "".join(f"<td>{r.confusion[a][b]}</td>" for b in VERDICTS)
        + "</tr>"
        for a in VERDICTS
    )
    agreement = "n/a" if r.agreement is None else f"{r.agreement:.4f}"
    return (
        f"<h1>Backtest: {escape(meta['plugin'])}:{escape(meta['recipe'])}</h1>"
        f"<p>candidate <code>{escape(meta['candidate'])}</code> (sha256 "
        f"{escape(meta['sha256'][:12])}...), window {escape(meta['window'])}</p>"
        f"<p>{r.images} images re-inspected, {r.changed} changed, agreement {agreement}, "
        f"{r.errors} could not be read</p>"
        "<table><tr><th>recorded \\ candidate</th>"
        + "".join(f"<th>{sec.v(b)}</th>" for b in VERDICTS)
        + f"</tr>{rows}</table>"
    )


def _pair(i: int, c: Changed, files: Path) -> str:
    """One changed image: the recorded overlay beside the candidate's, and why it changed."""
    recorded = _copy(c.item.overlay, files, f"{i}_recorded")
    candidate = None
    if c.result.overlay_png:
        candidate = files / f"{i}_candidate.png"
        candidate.write_bytes(c.result.overlay_png)
    human = f", operator: {sec.v(c.reviewed)}" if c.reviewed else ""
    return (
        f'<div class="pair"><figure>{_img(recorded, files)}<figcaption>recorded '
        f"{sec.v(c.item.recorded)}</figcaption></figure><figure>{_img(candidate, files)}"
        f"<figcaption>candidate {sec.v(c.result.verdict)}{human}</figcaption></figure>"
        f"<div><p>#{c.item.inspection_id} {escape(c.item.station)}<br>"
        f"<code>{escape(c.item.url)}</code></p>{sec.why(c.why)}</div></div>"
    )


def _copy(src: str | None, files: Path, stem: str) -> Path | None:
    if not src or not Path(src).is_file():
        return None
    dest = files / (stem + Path(src).suffix.lower())
    shutil.copyfile(src, dest)
    return dest


def _img(p: Path | None, files: Path) -> str:
    if p is None:
        return "<p>(no overlay)</p>"
    return f'<img src="{escape(files.name)}/{escape(p.name)}" alt="">'
