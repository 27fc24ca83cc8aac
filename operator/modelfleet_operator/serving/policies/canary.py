"""The canary decision of one analysis stage: promote or roll back, from the points measured on the
stable and the canary track with the same benchmark (pure).

The canary passes when every one of its points was measured and meets every SLO, and at every load
level it is no worse than stable by more than the allowed margin: output tokens per second at most
``max_regression_percent`` lower, the p95 of each SLO metric at most that much higher. A load level at
which stable was not measured is judged on the SLOs alone (said in the message). The message names the
figures that decided, so the condition and the event explain a rollback without opening the sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_api.slo import limits, missed, wire_name


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
    return found


def decide(
    stable: list[PointStatus], canary: list[PointStatus], slos: Slos, max_regression_percent: float
) -> Decision:
    """Promote or roll back, from the two tracks' points (matched by load level)."""
    if not canary:
        return Decision(promote=False, message="the canary's benchmark has no point")
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
        reference = stable_at.get(point.load)
        if reference is None:
            unmatched.append(point.load)
            continue
        regressions = _regressions(point, reference, slos, max_regression_percent)
        if regressions:
            failures.append(f"at {point.load} the canary is worse than stable: {'; '.join(regressions)}")
            continue
        c_tps, s_tps = point.output_tokens_per_second, reference.output_tokens_per_second
        ratio = f" ({_percent(c_tps, s_tps)} of stable's output tokens/s)" if c_tps and s_tps else ""
        compared.append(f"{point.load}{ratio}")
    if failures:
        return Decision(promote=False, message="; ".join(failures))
    parts = [f"the canary met every SLO at {len(canary)} load levels"]
    if compared:
        parts.append(f"within {max_regression_percent:g}% of stable at {', '.join(compared)}")
    if unmatched:
        parts.append(f"stable was not measured at {', '.join(unmatched)}, judged on the SLOs alone")
    return Decision(promote=True, message="; ".join(parts))
