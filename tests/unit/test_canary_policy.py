"""The canary decision of a stage from both tracks' points: promote when the canary meets the SLOs and
is within the margin of stable at every load level, else roll back naming the deciding figures."""

from __future__ import annotations

import pytest
from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_operator.serving.policies.canary import Decision, decide

pytestmark = pytest.mark.unit

SLOS = Slos(ttft_p95_ms=500.0, tpot_p95_ms=50.0)


def point(load: int, tps: float, ttft: float, tpot: float = 20.0, **more: object) -> PointStatus:
    return PointStatus.model_validate(
        {
            "index": load,
            "target": "t",
            "load": f"concurrency={load}",
            "phase": PointPhase.SUCCEEDED,
            "outputTokensPerSecond": tps,
            "ttftP95Ms": ttft,
            "tpotP95Ms": tpot,
            "meetsSlos": True,
            **more,
        }
    )


STABLE = [point(1, 100.0, 200.0), point(8, 600.0, 400.0)]


def test_a_canary_within_the_margin_that_meets_the_slos_is_promoted() -> None:
    canary = [point(1, 95.0, 210.0), point(8, 570.0, 430.0)]

    assert decide(STABLE, canary, SLOS, 10.0) == Decision(
        promote=True,
        message="the canary met every SLO at 2 load levels; within 10% of stable at concurrency=1 (95% of "
        "stable's output tokens/s), concurrency=8 (95% of stable's output tokens/s)",
    )


def test_a_slower_canary_is_rolled_back_with_the_figures() -> None:
    canary = [point(1, 99.0, 205.0), point(8, 480.0, 460.0)]

    assert decide(STABLE, canary, SLOS, 10.0) == Decision(
        promote=False,
        message="at concurrency=8 the canary is worse than stable: output tokens/s 480 is 80% of stable's "
        "600 (at least 90% allowed); ttftP95Ms 460 is 115% of stable's 400 (at most 110% allowed)",
    )


def test_a_canary_missing_an_slo_or_failing_a_point_is_rolled_back() -> None:
    canary = [
        point(1, 120.0, 650.0, meetsSlos=False),
        point(8, 0.0, 0.0).model_copy(
            update={"phase": PointPhase.FAILED, "reason": "JobFailed", "message": "connection refused"}
        ),
    ]

    decision = decide(STABLE, canary, SLOS, 10.0)
    assert decision == Decision(
        promote=False,
        message="at concurrency=1 the canary misses the SLOs: ttftP95Ms 650 > 500; at concurrency=8 the "
        "canary's point failed (JobFailed: connection refused)",
    )


def test_a_level_stable_did_not_measure_is_judged_on_the_slos_alone() -> None:
    stable = [STABLE[0], STABLE[1].model_copy(update={"phase": PointPhase.FAILED})]
    canary = [point(1, 100.0, 200.0), point(8, 10.0, 490.0)]

    decision = decide(stable, canary, SLOS, 0.0)
    assert decision.promote
    assert decision.message.endswith("stable was not measured at concurrency=8, judged on the SLOs alone")
    assert not decide(stable, [], SLOS, 10.0).promote
