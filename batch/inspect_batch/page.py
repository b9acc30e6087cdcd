"""The HTML page of a backtest: its numbers, and the images whose verdict changes with the
recorded overlay beside the candidate's. Self-contained: the overlays are written into a folder
beside the page (``NAME_files/``); every text is escaped."""

from __future__ import annotations

import shutil
from html import escape
from pathlib import Path
from typing import Any

from inspect_batch.compare import VERDICTS, Tally

STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em}
.pair{display:flex;gap:1em;margin:1em 0;align-items:flex-start}
.pair figure{margin:0}.pair img{max-width:420px;max-height:420px;border:1px solid #999}
.PASS{color:#1a7f37}.REVIEW{color:#9a6700}.FAIL{color:#cf222e}"""


def _v(verdict: str | None) -> str:
    v = escape(verdict or "-")
    return f'<b class="{v}">{v}</b>'


def write_page(path: Path, tally: Tally, meta: dict[str, Any]) -> Path:
    """Write the page to ``path`` and its overlays to ``path``'s ``_files`` folder."""
    files = path.with_name(path.stem + "_files")
    files.mkdir(parents=True, exist_ok=True)
    s = tally.summary()
    rows = "".join(
        f"<tr><th>{_v(a)}</th>"
        + "".join(f"<td>{s['confusion'][a][b]}</td>" for b in VERDICTS)
        + "</tr>"
        for a in VERDICTS
    )
    agreement = "n/a" if s["agreement"] is None else f"{s['agreement']:.4f}"
    head = (
        f"<h1>Backtest: {escape(meta['plugin'])}:{escape(meta['recipe'])}</h1>"
        f"<p>candidate <code>{escape(meta['candidate'])}</code> (sha256 "
        f"{escape(meta['sha256'][:12])}...), window {escape(meta['window'])}</p>"
        f"<p>{s['images']} images re-inspected, {s['changed']} changed, agreement {agreement}, "
        f"{s['errors']} could not be read</p>"
        "<table><tr><th>recorded \\ candidate</th>"
        + "".join(f"<th>{_v(b)}</th>" for b in VERDICTS)
        + f"</tr>{rows}</table>"
    )
    pairs = []
    for i, c in enumerate(tally.examples):
        recorded = _copy(c.item.overlay, files, f"{i}_recorded")
        candidate = None
        if c.result.overlay_png:
            candidate = files / f"{i}_candidate.png"
            candidate.write_bytes(c.result.overlay_png)
        human = f", operator: {_v(c.reviewed)}" if c.reviewed else ""
        pairs.append(
            f'<div class="pair"><figure>{_img(recorded, files)}<figcaption>recorded '
            f"{_v(c.item.recorded)}</figcaption></figure><figure>{_img(candidate, files)}"
            f"<figcaption>candidate {_v(c.result.verdict)}{human}</figcaption></figure>"
            f"<p>#{c.item.inspection_id} {escape(c.item.station)}<br>"
            f"<code>{escape(c.item.url)}</code></p></div>"
        )
    more = tally.changed - len(tally.examples)
    tail = f"<p>... and {more} more changed images (not shown)</p>" if more > 0 else ""
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>backtest</title>'
        f"<style>{STYLE}</style></head><body>{head}<h2>Changed verdicts</h2>"
        f"{''.join(pairs) or '<p>none</p>'}{tail}</body></html>"
    )
    path.write_text(html, encoding="utf-8")
    return path


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
