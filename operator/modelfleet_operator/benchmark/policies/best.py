"""Choosing the best points: highest output-token throughput overall, under all SLOs, and under each.

Throughput is output tokens per second; a tie goes to the earlier point (lower load, usually the
cheaper configuration). An SLO's check uses the point's p95 of that metric, the same rule the
benchmark client applies for ``meetsSlos``.
"""

from __future__ import annotations

from collections.abc import Callable

from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import BestPoint, PointStatus
from modelfleet_api.constants import PointPhase

ALL_SLOS = "all"
THROUGHPUT = "throughput"
SLO_METRICS = ("ttft_p95_ms", "tpot_p95_ms", "e2e_p95_ms")
"""Fields of ``Slos`` and of ``PointMetrics`` with the same name and meaning."""


def _best(points: list[PointStatus], slo: str, keep: Callable[[PointStatus], bool]) -> BestPoint | None:
    measured = [
        p
        for p in points
        if p.phase is PointPhase.SUCCEEDED and p.output_tokens_per_second is not None and keep(p)
    ]
    if not measured:
        return None
    best = max(measured, key=lambda p: (p.output_tokens_per_second or 0.0, -p.index))
    return BestPoint(
        slo=slo,
        point=best.index,
        target=best.target,
        load=best.load,
        output_tokens_per_second=best.output_tokens_per_second or 0.0,
        goodput=best.goodput,
    )


def _within(name: str, limit: float) -> Callable[[PointStatus], bool]:
    def check(point: PointStatus) -> bool:
        value: float | None = getattr(point, name)
        return value is not None and value <= limit

    return check


def best_throughput(points: list[PointStatus]) -> BestPoint | None:
    return _best(points, THROUGHPUT, lambda _: True)


def best_per_slo(points: list[PointStatus], slos: Slos) -> list[BestPoint]:
    """``all`` (every SLO met), then one entry per SLO that is set, for those some point meets."""
    limits = {name: getattr(slos, name) for name in SLO_METRICS if getattr(slos, name) is not None}
    if not limits:
        return []
    found = [_best(points, ALL_SLOS, lambda p: all(_within(n, v)(p) for n, v in limits.items()))]
    found += [_best(points, Slos.model_fields[n].alias or n, _within(n, v)) for n, v in limits.items()]
    return [b for b in found if b is not None]
