"""bestPerSlo names only a point meeting every SLO; when none does, SlosMet=False says so with the
closest figures (the demo's case: every point failed one SLO and one was still called best)."""

from __future__ import annotations

import pytest
from modelfleet_api import constants as c
from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_operator.benchmark.policies.best import Verdict, best_per_slo, slo_verdict

pytestmark = pytest.mark.unit

SLOS = Slos(ttft_p95_ms=500.0, tpot_p95_ms=100.0)


def point(index: int, ttft: float, tpot: float, meets: bool | None = None) -> PointStatus:
    return PointStatus(
        index=index,
        target="tiny",
        load=f"concurrency={2**index}",
        phase=PointPhase.SUCCEEDED,
        output_tokens_per_second=10.0 * (index + 1),
        ttft_p95_ms=ttft,
        tpot_p95_ms=tpot,
        meets_slos=meets,
    )


def test_no_best_is_named_when_every_point_fails_an_slo() -> None:
    points = [point(0, 812.0, 40.0, False), point(1, 1500.0, 60.0, False), point(2, 3100.5, 95.0, False)]

    assert best_per_slo(points, SLOS, {}) == []
    assert slo_verdict(points, SLOS, {}) == Verdict(
        status=False,
        reason=c.REASON_NO_POINT_MEETS_SLOS,
        message="None of the 3 measured points meets every SLO, so bestPerSlo names none (ttftP95Ms <= "
        "500: lowest p95 812 ms at point 0 (concurrency=1), met by 0; tpotP95Ms <= 100: lowest p95 40 ms "
        "at point 0 (concurrency=1), met by 3).",
    )


def test_the_clients_own_verdict_on_unrounded_figures_is_kept() -> None:
    """A point whose rounded figures sit on the threshold but whose client said it missed is not best."""
    points = [point(0, 500.0, 100.0, False), point(1, 200.0, 50.0, True)]

    assert [(b.slo, b.point) for b in best_per_slo(points, SLOS, {})] == [("all", 1)]
    verdict = slo_verdict(points, SLOS, {})
    assert verdict is not None and verdict.status and verdict.reason == c.REASON_POINTS_MEET_SLOS
    assert verdict.message == (
        "1 of 2 measured points meet every SLO; the best is point 1 (tiny concurrency=2) at 20 output "
        "tokens/s."
    )


def test_no_verdict_without_slos_or_before_a_point_is_measured() -> None:
    assert slo_verdict([point(0, 1.0, 1.0)], Slos(), {}) is None
    pending = point(0, 1.0, 1.0).model_copy(update={"phase": PointPhase.RUNNING})
    assert slo_verdict([pending], SLOS, {}) is None
