"""The parts of the backtest page (:mod:`inspect_batch.page`) beyond the verdicts: latency
against the records', agreement with the operators, and why a changed verdict changed. Every
text from the records or the models is escaped here."""

from __future__ import annotations

from html import escape

from inspect_batch.items import Fired
from inspect_batch.result import BacktestResult, Spread
from inspect_batch.why import WhyChanged


def v(verdict: str | None) -> str:
    """A verdict, coloured."""
    text = escape(verdict or "-")
    return f'<b class="{text}">{text}</b>'


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _spread_row(label: str, s: Spread | None) -> str:
    if s is None:
        return f"<tr><th>{escape(label)}</th><td colspan=4>none measured</td></tr>"
    return (
        f"<tr><th>{escape(label)}</th><td>{s.count}</td><td>{_ms(s.median)}</td>"
        f"<td>{_ms(s.p95)}</td><td>{_ms(s.max)}</td></tr>"
    )


def latency(r: BacktestResult) -> str:
    """The candidate's model time per image against the records' latency of the same images."""
    lat = r.latency
    return (
        "<h2>Latency (ms per image)</h2>"
        "<table><tr><th></th><th>images</th><th>median</th><th>p95</th><th>max</th></tr>"
        + _spread_row("candidate: model step", lat.candidate_model_ms)
        + _spread_row("recorded: latency_ms (taken to recorded)", lat.recorded_latency_ms)
        + _spread_row("recorded: inspect_ms (on the image)", lat.recorded_inspect_ms)
        + "</table><p>The candidate's time is its model step on the decoded image (model, "
        "post-processing, rules) on the backtest's workers; the records' latency includes "
        "reading, decoding and the station's queue.</p>"
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def operators(r: BacktestResult) -> str:
    """How often the recorded and the candidate's verdicts agree with the operators', and the
    images where the candidate now disagrees."""
    o = r.operators
    if not o.images:
        return (
            "<h2>Operators' agreement</h2><p>no image of the window was decided by an operator</p>"
        )
    rs = o.recorded_agrees / o.images
    cs = o.candidate_agrees / o.images
    rows = "".join(
        f"<tr><td>#{d.inspection_id}</td><td>{escape(d.station)}</td>"
        f"<td><code>{escape(d.url)}</code></td><td>{v(d.recorded)}</td>"
        f"<td>{v(d.candidate)}</td><td>{v(d.operator)}</td></tr>"
        for d in o.disagreements
    )
    more = o.candidate_disagrees - len(o.disagreements)
    tail = f"<p>... and {more} more (not shown)</p>" if more > 0 else ""
    table = (
        "<table><tr><th>inspection</th><th>station</th><th>image</th><th>recorded</th>"
        f"<th>candidate</th><th>operator</th></tr>{rows}</table>{tail}"
        if rows
        else "<p>none: the candidate agrees with every operator decision</p>"
    )
    return (
        "<h2>Operators' agreement</h2>"
        f"<p>{o.images} image{'' if o.images == 1 else 's'} decided by an operator: the "
        f"recorded verdict agrees on "
        f"{o.recorded_agrees} ({_pct(rs)}), the candidate's on {o.candidate_agrees} "
        f"({_pct(cs)})</p><h3>Where the candidate disagrees with the operator "
        f"({o.candidate_disagrees})</h3>{table}"
    )


def _fired(fired: tuple[Fired, ...]) -> str:
    if not fired:
        return "none"
    return ", ".join(f"{escape(f.rule)} ({escape(f.decision)})" for f in fired)


def why(w: WhyChanged | None) -> str:
    """Why one verdict changed: the classes whose regions differ, the rules on each side."""
    if w is None:
        return "<p>(the record's regions were not found)</p>"
    classes = "".join(f"<li>{escape(c.text())}</li>" for c in w.classes)
    if not classes:
        classes = "<li>the same regions: the rules decide differently</li>"
    return (
        f'<div class="why"><ul>{classes}</ul><p>rules fired: recorded '
        f"{_fired(w.recorded_fired)}; candidate {_fired(w.candidate_fired)}</p></div>"
    )


def why_classes(r: BacktestResult) -> str:
    """Per class, how many of the changed images shown differ in its regions."""
    n = r.why_classes()
    if not n:
        return ""
    items = ", ".join(f"{escape(k)} {c}" for k, c in n.items())
    return f"<p>classes whose regions differ, in images shown: {items}</p>"
