"""Choosing the best points: the highest output-token throughput overall, and among the points that meet
every SLO and every quality floor (pure).

Throughput is output tokens per second; a tie goes to the earlier point (lower load, usually the
cheaper configuration). A point meets the SLOs when it was measured, the p95 of every SLO metric is
within its threshold (the rule the benchmark client applies for ``meetsSlos``) and the client did not
say otherwise on its unrounded figures; it meets the floors (``quality.floors``) when each floored score
is at or above its floor, and the client did not say otherwise (``quality.meetsFloor``). ``bestPerSlo``
names only such a point; when none is, the ``SlosMet`` condition says so with the closest figures
measured, so a reader never takes the best of failing points for a good one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from modelfleet_api import constants as c
from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import BestPoint, PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_api.quality import floor_misses
from modelfleet_api.slo import limits, meets_slos, wire_name, within

ALL_SLOS = "all"
THROUGHPUT = "throughput"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The SlosMet condition to set."""

    status: bool
    reason: str
    message: str


def _measured(points: list[PointStatus]) -> list[PointStatus]:
    return [p for p in points if p.phase is PointPhase.SUCCEEDED and p.output_tokens_per_second is not None]


def _best(points: list[PointStatus], slo: str, keep: Callable[[PointStatus], bool]) -> BestPoint | None:
    kept = [p for p in _measured(points) if keep(p)]
    if not kept:
        return None
    best = max(kept, key=lambda p: (p.output_tokens_per_second or 0.0, -p.index))
    return BestPoint(
        slo=slo,
        point=best.index,
        target=best.target,
        load=best.load,
        output_tokens_per_second=best.output_tokens_per_second or 0.0,
        goodput=best.goodput,
    )


def best_throughput(points: list[PointStatus]) -> BestPoint | None:
    return _best(points, THROUGHPUT, lambda _: True)


def meets_objectives(point: PointStatus, slos: Slos, floors: Mapping[str, float]) -> bool:
    """Measured, within every SLO and at or above every quality floor."""
    return meets_slos(point, slos) and not floor_misses(point.quality, floors)


def best_per_slo(points: list[PointStatus], slos: Slos, floors: Mapping[str, float]) -> list[BestPoint]:
    """``all``: the highest-throughput point meeting every SLO and every quality floor; empty without
    either, or when none does."""
    if not limits(slos) and not floors:
        return []
    found = _best(points, ALL_SLOS, lambda p: meets_objectives(p, slos, floors))
    return [found] if found is not None else []


def slo_verdict(points: list[PointStatus], slos: Slos, floors: Mapping[str, float]) -> Verdict | None:
    """The ``SlosMet`` condition once a point was measured (None without SLOs and floors, or before a
    point was measured)."""
    set_limits, measured = limits(slos), _measured(points)
    if (not set_limits and not floors) or not measured:
        return None
    objectives = _objectives(set_limits, floors)
    best = best_per_slo(points, slos, floors)
    if best:
        meeting = sum(meets_objectives(p, slos, floors) for p in measured)
        top = best[0]
        return Verdict(
            status=True,
            reason=c.REASON_POINTS_MEET_SLOS,
            message=f"{meeting} of {len(measured)} measured points meet {objectives}; the best is point "
            f"{top.point} ({top.target} {top.load}) at {top.output_tokens_per_second:g} output tokens/s.",
        )
    closest = []
    for metric, limit in set_limits.items():
        values = [p for p in measured if getattr(p, metric) is not None]
        if not values:
            closest.append(f"{wire_name(metric)} <= {limit:g}: not measured")
            continue
        low = min(values, key=lambda p: (getattr(p, metric), p.index))
        met = sum(within(p, metric, limit) for p in values)
        closest.append(
            f"{wire_name(metric)} <= {limit:g}: lowest p95 {getattr(low, metric):g} ms at point {low.index} "
            f"({low.load}), met by {met}"
        )
    for metric, floor in floors.items():
        scores = [(p, p.quality.scores[metric]) for p in measured if p.quality and metric in p.quality.scores]
        if not scores:
            closest.append(f"{metric} >= {floor:g}: not measured")
            continue
        high, value = max(scores, key=lambda pv: (pv[1], -pv[0].index))
        met = sum(v >= floor for _, v in scores)
        closest.append(
            f"{metric} >= {floor:g}: highest {value:g} at point {high.index} ({high.load}), met by {met}"
        )
    return Verdict(
        status=False,
        reason=c.REASON_NO_POINT_MEETS_SLOS,
        message=f"None of the {len(measured)} measured points meets {objectives}, so bestPerSlo names none ("
        + "; ".join(closest)
        + ").",
    )


def _objectives(set_limits: Mapping[str, float], floors: Mapping[str, float]) -> str:
    """What a point must meet, in words: every SLO, every quality floor, or both."""
    named = (["every SLO"] if set_limits else []) + (["every quality floor"] if floors else [])
    return " and ".join(named)
