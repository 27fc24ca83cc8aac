"""The canary decision of one analysis stage: promote or roll back, from the points measured on the
stable and the canary track with the same benchmark (pure).

The canary passes when every one of its points was measured and meets every SLO and every quality
floor (``quality.floors``), and at every load level it is no worse than stable by more than the allowed
margin: output tokens per second at most ``max_regression_percent`` lower, the p95 of each SLO metric at
most that much higher, and each quality score both tracks measured at most that much lower. A load
level at which stable was not measured is judged on the SLOs and floors alone (said in the message).
The message names the figures that decided (the quality scores among them), so the condition and the
event explain a rollback without opening the sweeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_api.quality import QualitySpec, floor_misses
from modelfleet_api.slo import limits, missed, wire_name

QUOTED_SCORES = 3
"""Quality scores quoted per load level when a canary passes without floors (all are compared)."""


@dataclass(frozen=True, kw_only=True)
class Decision:
    promote: bool
    message: str


def _percent(canary: float, stable: float) -> str:
    return f"{100.0 * canary / stable:.0f}%" if stable else "n/a"


def _regressions(canary: PointStatus, stable: PointStatus, slos: Slos, margin: float) -> list[str]:
    found = []
    c_tps, s_tps = canary.output_tokens_per_second, stable.output_tokens_per_second
    if c_tps is not None and s_tps is not None and c_tps < s_tps * (1 - margin / 100):
        found.append(
            f"output tokens/s {c_tps:g} is {_percent(c_tps, s_tps)} of stable's {s_tps:g} "
            f"(at least {100 - margin:g}% allowed)"
        )
    for metric in limits(slos):
        c_value, s_value = getattr(canary, metric), getattr(stable, metric)
        if c_value is not None and s_value is not None and c_value > s_value * (1 + margin / 100):
            found.append(
                f"{wire_name(metric)} {c_value:g} is {_percent(c_value, s_value)} of stable's {s_value:g} "
                f"(at most {100 + margin:g}% allowed)"
            )
    for name, (c_score, s_score) in _shared_scores(canary, stable).items():
        if c_score < s_score * (1 - margin / 100):
            found.append(
                f"quality {name} {c_score:g} is {_percent(c_score, s_score)} of stable's {s_score:g} "
                f"(at least {100 - margin:g}% allowed)"
            )
    return found


def _shared_scores(canary: PointStatus, stable: PointStatus) -> dict[str, tuple[float, float]]:
    """(canary's, stable's) of each quality score both points have, by name."""
    c_scores = canary.quality.scores if canary.quality else {}
    s_scores = stable.quality.scores if stable.quality else {}
    return {name: (c_scores[name], s_scores[name]) for name in sorted(c_scores.keys() & s_scores.keys())}


def _quoted_scores(point: PointStatus, stable: PointStatus | None, floors: Mapping[str, float]) -> str:
    """The canary's scores that decided, with stable's beside them: the floored ones, else the first
    QUOTED_SCORES both measured."""
    scores = point.quality.scores if point.quality else {}
    shared = _shared_scores(point, stable) if stable is not None else {}
    names = [n for n in floors if n in scores] or list(shared)[:QUOTED_SCORES]
    return ", ".join(
        f"{name} {scores[name]:g}" + (f" (stable {shared[name][1]:g})" if name in shared else "")
        for name in names
    )


def decide(
    stable: list[PointStatus],
    canary: list[PointStatus],
    slos: Slos,
    max_regression_percent: float,
    quality: QualitySpec | None = None,
) -> Decision:
    """Promote or roll back, from the two tracks' points (matched by load level)."""
    if not canary:
        return Decision(promote=False, message="the canary's benchmark has no point")
    floors = quality.floors if quality is not None else {}
    stable_at = {p.load: p for p in stable if p.phase is PointPhase.SUCCEEDED}
    failures: list[str] = []
    compared: list[str] = []
    unmatched: list[str] = []
    for point in canary:
        if point.phase is not PointPhase.SUCCEEDED:
            failures.append(f"at {point.load} the canary's point failed ({point.reason}: {point.message})")
            continue
        missing = missed(point, slos)
        if missing:
            failures.append(f"at {point.load} the canary misses the SLOs: {', '.join(missing)}")
            continue
        below = floor_misses(point.quality, floors)
        if below:
            failures.append(f"at {point.load} the canary misses the quality floor: {', '.join(below)}")
            continue
        reference = stable_at.get(point.load)
        if reference is None:
            unmatched.append(point.load)
            continue
        regressions = _regressions(point, reference, slos, max_regression_percent)
        if regressions:
            failures.append(f"at {point.load} the canary is worse than stable: {'; '.join(regressions)}")
            continue
        c_tps, s_tps = point.output_tokens_per_second, reference.output_tokens_per_second
        figures = [f"{_percent(c_tps, s_tps)} of stable's output tokens/s"] if c_tps and s_tps else []
        if quality is not None and (scores := _quoted_scores(point, reference, floors)):
            figures.append(f"quality {scores}")
        compared.append(f"{point.load}" + (f" ({'; '.join(figures)})" if figures else ""))
    if failures:
        return Decision(promote=False, message="; ".join(failures))
    met = "every SLO" + (
        f" and the quality floor ({', '.join(f'{name} >= {floor:g}' for name, floor in floors.items())})"
        if floors
        else ""
    )
    parts = [f"the canary met {met} at {len(canary)} load levels"]
    if compared:
        parts.append(f"within {max_regression_percent:g}% of stable at {', '.join(compared)}")
    if unmatched:
        judged = "the SLOs and the quality floor" if floors else "the SLOs"
        parts.append(f"stable was not measured at {', '.join(unmatched)}, judged on {judged} alone")
    return Decision(promote=True, message="; ".join(parts))
