"""The plot of a benchmark sweep: latency against throughput, one series per target, every point
labelled with its load, the SLO thresholds drawn as lines; a self-contained HTML page with inline SVG.

One renderer for both places a sweep is drawn: the operator writes it into the sweep's results
ConfigMap from the points' status, and ``modelfleet-bench plot`` from results files. Hand-written
SVG rather than matplotlib or plotly because the operator image installs neither (they would add
tens of MB for one chart); the page needs no script and opens in any browser.

A series joins its points in load order (not throughput order): past saturation throughput stops
growing or falls while latency climbs, and the curve bending back is what shows it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelfleet_api.benchmark import Slos

PANELS = (
    ("ttft_p95_ms", "TTFT p95 (ms)"),
    ("tpot_p95_ms", "TPOT p95 (ms)"),
    ("e2e_p95_ms", "E2E p95 (ms)"),
)
"""(field of PointMetrics and Slos, axis title): one panel each."""
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
WIDTH, HEIGHT = 460, 340
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 48


@dataclass(frozen=True)
class PlotPoint:
    """One measured point as the plot needs it."""

    target: str
    load: str
    """Its load label, written next to it."""
    level: float
    """Its load level (concurrency or rate): the order the series joins points in."""
    throughput: float
    """Output tokens per second."""
    latency: dict[str, float | None] = field(default_factory=dict)
    """p95 milliseconds by ``PANELS`` field name."""
    held_load: bool | None = None
    """False: drawn hollow (the client did not keep the load's schedule)."""


def short_label(load: str) -> str:
    """`concurrency=8` -> `c=8`, `rate=4/s (poisson)` -> `4/s`."""
    if load.startswith("concurrency="):
        return "c=" + load.removeprefix("concurrency=")
    return load.removeprefix("rate=").split(" ", 1)[0]


def _ticks(high: float) -> list[float]:
    """Round tick values from 0 to at least `high`."""
    if high <= 0:
        return [0.0, 1.0]
    step = 10 ** math.floor(math.log10(high / 4))
    for multiple in (1, 2, 5, 10):
        if high / (step * multiple) <= 5:
            step *= multiple
            break
    return [step * i for i in range(math.ceil(high / step) + 1)]


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:,.0f}"


def panel(
    points: Sequence[PlotPoint], metric: str, title: str, limit: float | None, targets: list[str]
) -> str:
    """One SVG chart of `metric` against throughput."""
    drawn = [p for p in points if p.latency.get(metric) is not None]
    xs = _ticks(max((p.throughput for p in drawn), default=1.0))
    ys = _ticks(max([*(p.latency[metric] or 0.0 for p in drawn), limit or 0.0]) or 1.0)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return LEFT + inner_w * value / xs[-1]

    def y(value: float) -> float:
        return TOP + inner_h * (1 - value / ys[-1])

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
    ]
    for tick in xs:
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{TOP + inner_h}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{x(tick):.1f}" y="{TOP + inner_h + 14}" text-anchor="middle">{_number(tick)}</text>'
        )
    for tick in ys:
        parts.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + inner_w}" y2="{y(tick):.1f}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    parts.append(
        f'<text x="{LEFT + inner_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">output tokens/s</text>'
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#999"/>'
    )
    if limit is not None:
        parts.append(
            f'<line x1="{LEFT}" y1="{y(limit):.1f}" x2="{LEFT + inner_w}" y2="{y(limit):.1f}" '
            f'stroke="#000" stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + inner_w - 4}" y="{y(limit) - 4:.1f}" text-anchor="end">'
            f"SLO {_number(limit)} ms</text>"
        )
    for number, target in enumerate(targets):
        colour = COLOURS[number % len(COLOURS)]
        series = sorted((p for p in drawn if p.target == target), key=lambda p: p.level)
        path = " ".join(f"{x(p.throughput):.1f},{y(p.latency[metric] or 0.0):.1f}" for p in series)
        if len(series) > 1:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for p in series:
            px, py = x(p.throughput), y(p.latency[metric] or 0.0)
            fill = "white" if p.held_load is False else colour
            note = " (did not hold its load)" if p.held_load is False else ""
            value = p.latency[metric] or 0.0
            tip = html.escape(f"{target} {p.load}: {value:g} ms at {p.throughput:g} tok/s{note}")
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{fill}" stroke="{colour}" '
                f'stroke-width="1.5"><title>{tip}</title></circle>'
                f'<text x="{px + 6:.1f}" y="{py - 6:.1f}" fill="{colour}">'
                f"{html.escape(short_label(p.load))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(points: Sequence[PlotPoint], slos: Slos, title: str) -> str:
    """The whole page: a legend of the targets and one panel per latency metric that has a value."""
    targets = list(dict.fromkeys(p.target for p in points))
    legend = "".join(
        f'<span style="color:{COLOURS[n % len(COLOURS)]};margin-right:1.5em">&#9679; {html.escape(t)}</span>'
        for n, t in enumerate(targets)
    )
    panels = [
        panel(points, metric, label, getattr(slos, metric), targets)
        for metric, label in PANELS
        if any(p.latency.get(metric) is not None for p in points)
    ]
    hollow = any(p.held_load is False for p in points)
    note = "<p>Hollow points: the client did not hold that load (heldLoad false).</p>" if hollow else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif'><h2>{html.escape(title)}</h2><p>{legend}</p>{note}"
        f"{''.join(panels) or '<p>No point has latency figures yet.</p>'}"
        "<p>Latency p95 against output throughput; each point is labelled with its load (c = concurrent "
        "users, /s = requests per second) and joined to the next higher load; dashed lines are the SLOs.</p>"
        "</body></html>\n"
    )
