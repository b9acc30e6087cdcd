"""The report as one self-contained HTML page: tables, inline SVG charts, embedded thumbnails.

Nothing is fetched from the network: styles and a tiny script are inline, charts are SVG and
the FAIL/REVIEW overlay thumbnails are downscaled JPEGs in ``data:`` URIs. When the page has
loaded, the script sets ``data-tables``, ``data-charts``, ``data-thumbnails`` and
``data-status="ready"`` on ``<body>`` (counts of what rendered), which the tests read back from
headless Chromium.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from inspect_core.types import VERDICTS
from inspect_db.report_render import CAPTION, TIMES, cannot_write, count_cells, pct

COLOURS = {"PASS": "#2e9b4a", "REVIEW": "#e0a800", "FAIL": "#d33b3b", "ERROR": "#8a5bb5"}
THUMB_SIDE = 200

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;background:#fff;margin-bottom:8px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left}
.muted{color:#777} .PASS{color:#2e9b4a} .REVIEW{color:#b08400} .FAIL{color:#d33b3b}
.ERROR{color:#8a5bb5} svg.chart{background:#fff;border:1px solid #ddd}
.gallery{display:flex;flex-wrap:wrap;gap:10px} figure{margin:0;background:#fff;
border:1px solid #ddd;padding:4px;max-width:210px} figcaption{font-size:12px;word-break:break-all}
.missing{width:200px;height:120px;display:flex;align-items:center;justify-content:center;
background:#eee;color:#999}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var b = document.body;
  var tables = Array.prototype.filter.call(document.querySelectorAll('table.report:not(.empty)'),
    function (t) { return t.tBodies.length && t.tBodies[0].rows.length > 0; });
  var charts = Array.prototype.filter.call(document.querySelectorAll('svg.chart'),
    function (s) { return s.querySelectorAll('.mark').length > 0 &&
                          s.getBoundingClientRect().width > 0; });
  var thumbs = Array.prototype.filter.call(document.querySelectorAll('img.thumb'),
    function (i) { return i.complete && i.naturalWidth > 0; });
  b.setAttribute('data-tables', tables.length);
  b.setAttribute('data-charts', charts.length);
  b.setAttribute('data-thumbnails', thumbs.length);
  b.setAttribute('data-status', 'ready');
});
"""


def thumbnail_data_uri(path: str | Path, side: int = THUMB_SIDE) -> str | None:
    """A downscaled JPEG of the image at ``path`` as a data URI (None if it cannot be read)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(
            img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _table(title: str, header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{v}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    cls = "report" if rows else "report empty"
    if not rows:
        body = f'<tr><td class="l muted" colspan="{len(header)}">nothing recorded</td></tr>'
    return (
        f'<h2>{escape(title)}</h2><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _v(verdict: str) -> str:
    return f'<span class="{escape(verdict)}">{escape(verdict)}</span>'


def _svg_open(chart_id: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" id="{chart_id}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    )


def _line(points: list[str], colour: str) -> str:
    """A chart's line through ``points`` ("x,y")."""
    return (
        f'<polyline class="mark line" points="{" ".join(points)}" fill="none" '
        f'stroke="{colour}" stroke-width="2"/>'
    )


def yield_chart(rows: list[dict[str, Any]], width: int = 760, height: int = 240) -> str:
    """Inspections per bucket as grey bars, yield as a green line (0-100 %)."""
    pad_l, pad_r, pad_t, pad_b = 48, 48, 12, 36
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    parts = [_svg_open("yield-chart", width, height)]
    n = len(rows)
    top = max((r["total"] for r in rows), default=0) or 1
    bw = pw / max(n, 1)
    pts = []
    for i, r in enumerate(rows):
        x = pad_l + i * bw
        bh = ph * r["total"] / top
        parts.append(
            f'<rect class="mark bar" x="{x + bw * 0.1:.1f}" y="{pad_t + ph - bh:.1f}" '
            f'width="{max(bw * 0.8, 1):.1f}" height="{bh:.1f}" fill="#ccd">'
            f"<title>{escape(r['start'])}: {r['total']} inspections, yield "
            f"{pct(r['yield'])}</title></rect>"
        )
        if r["yield"] is not None:
            pts.append(f"{x + bw / 2:.1f},{pad_t + ph * (1 - r['yield']):.1f}")
    if pts:
        parts.append(_line(pts, COLOURS["PASS"]))
        for p in pts:
            x, y = p.split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{COLOURS["PASS"]}"/>')
    for frac in (0, 0.5, 1):
        y = pad_t + ph * (1 - frac)
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#eee"/><text x="{pad_l + pw + 4}" y="{y + 4:.1f}" '
            f'font-size="11" fill="{COLOURS["PASS"]}">{int(frac * 100)}%</text>'
            f'<text x="{pad_l - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#667">{int(top * frac)}</text>'
        )
    if rows:
        for i in sorted({0, n // 2, n - 1}):
            parts.append(
                f'<text x="{pad_l + i * bw + bw / 2:.1f}" y="{height - 14}" '
                f'font-size="11" text-anchor="middle" fill="#555">'
                f"{escape(rows[i]['start'][:16])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def pareto_chart(rows: list[dict[str, Any]], width: int = 760, height: int = 260) -> str:
    """Regions per class as bars, most frequent first, with the cumulative share as a line."""
    pad_l, pad_r, pad_t, pad_b = 56, 48, 12, 48
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    parts = [_svg_open("pareto-chart", width, height)]
    top = max((r["regions"] for r in rows), default=0) or 1
    bw = pw / max(len(rows), 1)
    pts = []
    for i, r in enumerate(rows):
        x = pad_l + i * bw
        bh = ph * r["regions"] / top
        parts.append(
            f'<rect class="mark bar" x="{x + bw * 0.15:.1f}" '
            f'y="{pad_t + ph - bh:.1f}" width="{max(bw * 0.7, 1):.1f}" '
            f'height="{bh:.1f}" fill="{COLOURS["FAIL"]}"><title>{escape(r["class"])}: '
            f"{r['regions']} regions ({pct(r['share'])})</title></rect>"
            f'<text x="{x + bw / 2:.1f}" y="{height - pad_b + 16}" font-size="11" '
            f'text-anchor="middle">{escape(r["class"])}</text>'
        )
        pts.append(f"{x + bw / 2:.1f},{pad_t + ph * (1 - r['cumulative']):.1f}")
    if pts:
        parts.append(_line(pts, "#333"))
    for frac in (0, 0.5, 1):
        y = pad_t + ph * (1 - frac)
        parts.append(
            f'<text x="{pad_l + pw + 4}" y="{y + 4:.1f}" font-size="11">'
            f'{int(frac * 100)}%</text><text x="{pad_l - 4}" y="{y + 4:.1f}" '
            f'font-size="11" text-anchor="end">{int(top * frac)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _gallery(items: list[dict[str, Any]], review_url: str = "") -> str:
    figs = []
    for it in items:
        uri = thumbnail_data_uri(it["overlay_path"]) if it.get("overlay_path") else None
        cap = (
            f"{_v(it['verdict'])} {escape(it['station'])} · {escape(it['inspected_at'] or '')}"
            f"<br>{escape(Path(it['source']).name)}"
        )
        img = (
            f'<img class="thumb" src="{uri}" alt="{escape(it["source"])}">'
            if uri
            else '<div class="missing">overlay missing</div>'
        )
        if review_url:
            img = f'<a href="{escape(review_url)}/item/{int(it["id"])}">{img}</a>'
        figs.append(f"<figure>{img}<figcaption>{cap}</figcaption></figure>")
    if not figs:
        return '<p class="muted">no FAIL or REVIEW image with an overlay in this range</p>'
    return '<div class="gallery">' + "".join(figs) + "</div>"


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a report built with ``gallery > 0``."""
    f = report["filters"]
    scope = ", ".join(f"{k}={v}" for k, v in f.items() if v) or "everything recorded"
    tl = report["timeline"]
    review_url = (report.get("review_url") or "").rstrip("/")
    sections = [
        _verdicts_table(report),
        _stations_table(report["stations"]),
        f"<h2>Yield over time (per {escape(tl['bucket'])}, UTC)</h2>" + yield_chart(tl["rows"]),
        "<h2>Defect Pareto</h2>" + pareto_chart(report["pareto"]),
        _pareto_table(report["pareto"]),
        _worst_table(report["worst"]),
        _latency_table(report),
        _timeline_table(tl),
        _review_section(report.get("review"), review_url),
        "<h2>FAIL and REVIEW images</h2>" + _gallery(report.get("gallery", []), review_url),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Inspection report</title><style>{CSS}</style></head><body>"
        f'<h1>Inspection report</h1><p class="muted">{escape(report["database"])} · '
        f"{escape(scope)} · generated {escape(report['generated_at'])}</p>"
        f"<p><b>{report['total']:,}</b> inspections, yield <b>{pct(report['yield'])}</b></p>"
        + "".join(sections)
        + f"<script>{SCRIPT}</script></body></html>"
    )


def _review_section(review: dict[str, Any] | None, review_url: str) -> str:
    """Reviewed and pending per model verdict; per station, class and day where decided; a
    link to the review page when one is configured (``--review-url``)."""
    from inspect_db.report_render import OUTCOMES, REGION_LABELS

    if not review:
        return ""
    link = (
        f'<p><a id="review-link" href="{escape(review_url)}/">Open the review queue</a></p>'
        if review_url
        else ""
    )
    q = review["queue"]
    parts = [
        _table(
            "Operator review",
            ["model verdict", "reviewed", "pending"],
            [[_v(v), f"{c['reviewed']:,}", f"{c['pending']:,}"] for v, c in q.items()],
        )
        + link
    ]
    for title, key, first, cols in (
        ("Model and operator per station", "stations", "station", OUTCOMES),
        ("Model and operator per class (regions)", "classes", "class", REGION_LABELS),
        ("Overturned verdicts per day (UTC)", "days", "day", OUTCOMES),
    ):
        if not review[key]:
            continue
        agree = key != "days"
        rows = [
            [escape(r[first]), *(f"{r[k]:,}" for k, _ in cols)]
            + ([pct(r["agreement"])] if agree else [])
            for r in review[key]
        ]
        heads = [first, *(h for _, h in cols), *(["agreement"] if agree else [])]
        parts.append(_table(title, heads, rows))
    return "".join(parts)


def _verdicts_table(report: dict[str, Any]) -> str:
    vc = report["verdicts"]
    return _table(
        "Verdicts",
        [*VERDICTS, "total", "yield"],
        [[*(f"{vc[v]:,}" for v in VERDICTS), f"{report['total']:,}", pct(report["yield"])]],
        left=0,
    )


def _stations_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        "Yield per station",
        ["station", "plugin", "recipe", "total", *VERDICTS, "yield"],
        [
            [escape(r["station"]), escape(r["plugin"]), escape(r["recipe"]), *count_cells(r)]
            for r in rows
        ],
        left=3,
    )


def _pareto_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        "Defects by class",
        ["class", "regions", "share", "cumulative", "area px"],
        [
            [
                escape(r["class"]),
                f"{r['regions']:,}",
                pct(r["share"]),
                pct(r["cumulative"]),
                f"{r['area_px']:,}",
            ]
            for r in rows
        ],
    )


def _worst_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        "Worst images (largest defect area)",
        ["source", "station", "verdict", "inspected (UTC)", "regions", "area px"],
        [
            [
                escape(r["source"]),
                escape(r["station"]),
                _v(r["verdict"]),
                escape(r["inspected_at"] or ""),
                r["n_regions"],
                f"{r['defect_area_px']:,}",
            ]
            for r in rows
        ],
        left=4,
    )


def _latency_table(report: dict[str, Any]) -> str:
    """The latency and its two parts, inspection and queue wait, where recorded."""
    rows = []
    for key, label in TIMES:
        lat = report.get(key)
        if not lat or not lat["count"]:
            continue
        cells = ("-" if lat[k] is None else f"{lat[k]:.1f}" for k in ("p50", "p95", "mean", "max"))
        rows.append([escape(label), f"{lat['count']:,}", *cells])
    table = _table("Time per image (ms)", ["", "count", "p50", "p95", "mean", "max"], rows)
    return table + f'<p class="muted">{escape(CAPTION)}</p>' if rows else table


def _timeline_table(tl: dict[str, Any]) -> str:
    return _table(
        f"Inspections per {tl['bucket']}",
        ["start (UTC)", "total", *VERDICTS, "yield"],
        [[escape(r["start"]), *count_cells(r)] for r in tl["rows"]],
    )


def write_html(path: str | Path, report: dict[str, Any]) -> Path:
    path = Path(path)
    page = render_html(report)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise cannot_write(path, e) from e
    return path
