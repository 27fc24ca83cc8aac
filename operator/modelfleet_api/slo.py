"""Whether a measured point meets a sweep's SLOs: the one rule the sweep's best point, its SlosMet
condition and a canary analysis apply (pure)."""

from __future__ import annotations

from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.constants import PointPhase

SLO_METRICS = ("ttft_p95_ms", "tpot_p95_ms", "e2e_p95_ms")
"""Fields of ``Slos`` and of ``PointMetrics`` with the same name and meaning."""


def limits(slos: Slos) -> dict[str, float]:
    """The SLOs set: ``PointMetrics`` field -> threshold."""
    return {name: getattr(slos, name) for name in SLO_METRICS if getattr(slos, name) is not None}


def wire_name(metric: str) -> str:
    return Slos.model_fields[metric].alias or metric


def within(point: PointStatus, metric: str, limit: float) -> bool:
    value: float | None = getattr(point, metric)
    return value is not None and value <= limit


def missed(point: PointStatus, slos: Slos) -> list[str]:
    """Each SLO the point misses, as `ttftP95Ms 812 > 500` (`not measured` when it has no figure)."""
    found = []
    for metric, limit in limits(slos).items():
        value = getattr(point, metric)
        if value is None:
            found.append(f"{wire_name(metric)} not measured")
        elif value > limit:
            found.append(f"{wire_name(metric)} {value:g} > {limit:g}")
    if not found and point.meets_slos is False:
        found.append("meetsSlos false (the client's check on unrounded figures)")
    return found


def meets_slos(point: PointStatus, slos: Slos) -> bool:
    """Measured, every SLO metric within its threshold, and not refused by the client's own check."""
    return point.phase is PointPhase.SUCCEEDED and not missed(point, slos)
