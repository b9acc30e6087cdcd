"""The HTML report's two charts as geometry (:class:`Chart`), drawn as inline SVG by the
template ``templates/report.html``: yield over time (inspections as bars, yield as a line) and
the defect Pareto (regions per class as bars, the cumulative share as a line). Each has a
legend above its plot that names its bars and its line, with their colours and axes. Every
coordinate is a number formatted here; every text reaches the page through the template's
escaping."""

from __future__ import annotations

from dataclasses import dataclass, field

from inspect_db.reports.layout import pct
from inspect_db.reports.model import BucketCounts, ParetoRow

COLOURS = {"PASS": "#2e9b4a", "REVIEW": "#e0a800", "FAIL": "#d33b3b", "ERROR": "#8a5bb5"}
BAR_GREY = "#ccd"
LEGEND_Y = 14  # the baseline of the legend's text, above the plot
CHAR_PX = 6.2  # the width of a character of the legend's 11 px text, roughly


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    fill: str
    title: str  # the tooltip


@dataclass(frozen=True)
class Label:
    x: str
    y: str
    text: str
    anchor: str = "start"
    fill: str = "#333"


@dataclass(frozen=True)
class Key:
    """An entry of a chart's legend: a swatch (``bar``: a box; ``line``: a line with a dot)
    in ``colour`` at ``x``, and its text after it."""

    kind: str
    colour: str
    text: str
    x: str
    y: str = str(LEGEND_Y)

    @property
    def text_x(self) -> str:
        return _f(float(self.x) + 18)


def legend(start: float, entries: list[tuple[str, str, str]]) -> list[Key]:
    """The legend's entries (kind, colour, text) side by side from ``start``."""
    out, x = [], start
    for kind, colour, text in entries:
        out.append(Key(kind, colour, text, _f(x)))
        x += 18 + CHAR_PX * len(text) + 16
    return out


@dataclass
class Chart:
    id: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    line: list[tuple[str, str]] = field(default_factory=list)  # points (x, y)
    line_colour: str = "#333"
    dots: bool = False  # a dot on each point of the line
    grid: list[str] = field(default_factory=list)  # y of horizontal grid lines
    grid_x: tuple[str, str] = ("0", "0")  # where they start and end
    labels: list[Label] = field(default_factory=list)
    legend: list[Key] = field(default_factory=list)

    @property
    def points(self) -> str:
        return " ".join(f"{x},{y}" for x, y in self.line)


def _f(v: float) -> str:
    return f"{v:.1f}"


def yield_chart(
    rows: list[BucketCounts], bucket: str = "bucket", width: int = 760, height: int = 256
) -> Chart:
    """Inspections per ``bucket`` (hour, day) as grey bars, yield as a green line (0-100 %)."""
    pad_l, pad_r, pad_t, pad_b = 48, 48, 28, 36
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    chart = Chart("yield-chart", width, height, line_colour=COLOURS["PASS"], dots=True)
    chart.legend = legend(
        pad_l,
        [
            ("bar", BAR_GREY, f"inspections per {bucket} (left axis)"),
            ("line", COLOURS["PASS"], "yield, share of PASS (right axis)"),
        ],
    )
    top = max((r.total for r in rows), default=0) or 1
    bw = pw / max(len(rows), 1)
    for i, r in enumerate(rows):
        x, bh = pad_l + i * bw, ph * r.total / top
        tip = f"{r.start}: {r.total} inspections, yield {pct(r.yield_)}"
        chart.bars.append(
            Bar(_f(x + bw * 0.1), _f(pad_t + ph - bh), _f(max(bw * 0.8, 1)), _f(bh), BAR_GREY, tip)
        )
        if r.yield_ is not None:
            chart.line.append((_f(x + bw / 2), _f(pad_t + ph * (1 - r.yield_))))
    chart.grid_x = (str(pad_l), str(pad_l + pw))
    for frac in (0, 0.5, 1):
        y = pad_t + ph * (1 - frac)
        chart.grid.append(_f(y))
        chart.labels.append(
            Label(str(pad_l + pw + 4), _f(y + 4), f"{int(frac * 100)}%", fill=COLOURS["PASS"])
        )
        chart.labels.append(Label(str(pad_l - 4), _f(y + 4), str(int(top * frac)), "end", "#667"))
    if rows:
        for i in sorted({0, len(rows) // 2, len(rows) - 1}):
            at = _f(pad_l + i * bw + bw / 2)
            chart.labels.append(Label(at, str(height - 14), rows[i].start[:16], "middle", "#555"))
    return chart


def pareto_chart(rows: list[ParetoRow], width: int = 760, height: int = 276) -> Chart:
    """Regions per class as bars, most frequent first, with the cumulative share as a line."""
    pad_l, pad_r, pad_t, pad_b = 56, 48, 28, 48
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    chart = Chart("pareto-chart", width, height)
    chart.legend = legend(
        pad_l,
        [
            ("bar", COLOURS["FAIL"], "regions per class (left axis)"),
            ("line", chart.line_colour, "cumulative share of regions (right axis)"),
        ],
    )
    top = max((r.regions for r in rows), default=0) or 1
    bw = pw / max(len(rows), 1)
    for i, r in enumerate(rows):
        x, bh = pad_l + i * bw, ph * r.regions / top
        tip = f"{r.class_name}: {r.regions} regions ({pct(r.share)})"
        chart.bars.append(
            Bar(
                _f(x + bw * 0.15),
                _f(pad_t + ph - bh),
                _f(max(bw * 0.7, 1)),
                _f(bh),
                COLOURS["FAIL"],
                tip,
            )
        )
        chart.labels.append(Label(_f(x + bw / 2), str(height - pad_b + 16), r.class_name, "middle"))
        chart.line.append((_f(x + bw / 2), _f(pad_t + ph * (1 - r.cumulative))))
    for frac in (0, 0.5, 1):
        y = pad_t + ph * (1 - frac)
        chart.labels.append(Label(str(pad_l + pw + 4), _f(y + 4), f"{int(frac * 100)}%"))
        chart.labels.append(Label(str(pad_l - 4), _f(y + 4), str(int(top * frac)), "end"))
    return chart
