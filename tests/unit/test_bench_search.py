"""The load search (``load.search``): the shared decision (``modelfleet_api.loadsearch``) and the
operator's policy over a sweep's points, driven to the end the way the reconcile drives it (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api import loadsearch
from modelfleet_api.benchmark import LoadSearch, Slos
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec, PointMetrics, PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_operator.benchmark.grid import expand_points, expand_targets, point_status
from modelfleet_operator.benchmark.names import ChildNames
from modelfleet_operator.benchmark.policies.search import advance

pytestmark = pytest.mark.unit

SEARCH = LoadSearch(min=10, max=1000, precision=0.05)
SLOS = Slos(ttft_p95_ms=100)


def measured(levels: list[float], capacity: float) -> list[loadsearch.Probe]:
    """Probes at `levels` of a server that meets the SLOs up to `capacity` (TTFT above it)."""
    return [loadsearch.Probe(level, () if level <= capacity else ("ttftP95Ms",)) for level in levels]


def run_search(search: LoadSearch, closed: bool, capacity: float) -> list[float]:
    """Every level the search measures against that server, in order."""
    levels: list[float] = []
    while True:
        step = loadsearch.next_step(search, closed, measured(levels, capacity))
        if step.done:
            return levels
        assert step.next_level is not None
        levels.append(step.next_level)


def test_rate_search_doubles_then_bisects_geometrically_to_the_precision() -> None:
    levels = run_search(SEARCH, closed=False, capacity=137.0)
    assert levels[:5] == [10, 20, 40, 80, 160]
    # between 80 (met) and 160 (failed): geometric midpoints, rounded to 3 significant digits
    assert levels[5:] == [113, 134, 146, 140]
    found = loadsearch.bracket(measured(levels, 137.0))
    assert found.highest_meeting is not None and found.lowest_failing is not None
    assert (found.highest_meeting.level, found.lowest_failing.level) == (134, 140)
    assert SEARCH.precision >= (140 - 134) / 134
    assert loadsearch.limited_by(SEARCH, measured(levels, 137.0)) == ["ttftP95Ms"]


def test_concurrency_search_ends_on_adjacent_whole_numbers() -> None:
    search = LoadSearch(min=1, max=64)
    levels = run_search(search, closed=True, capacity=11)
    assert levels == [1, 2, 4, 8, 16, 12, 10, 11]
    found = loadsearch.bracket(measured(levels, 11))
    assert found.highest_meeting and found.highest_meeting.level == 11
    assert found.lowest_failing and found.lowest_failing.level == 12


def test_the_highest_allowed_level_meeting_the_slos_ends_the_search() -> None:
    levels = run_search(LoadSearch(min=10, max=50), closed=False, capacity=1e9)
    assert levels == [10, 20, 40, 50]
    assert loadsearch.limited_by(LoadSearch(min=10, max=50), measured(levels, 1e9)) == ["search.max"]


def test_a_first_level_that_fails_ends_the_search_with_no_answer() -> None:
    levels = run_search(SEARCH, closed=False, capacity=5)
    assert levels == [10]
    assert loadsearch.bracket(measured(levels, 5)).highest_meeting is None


def test_the_point_budget_ends_the_search() -> None:
    assert run_search(SEARCH.model_copy(update={"max_points": 3}), closed=False, capacity=137) == [10, 20, 40]


def test_the_search_waits_for_the_level_being_measured() -> None:
    step = loadsearch.next_step(SEARCH, False, [loadsearch.Probe(10, ()), loadsearch.Probe(20)])
    assert step == loadsearch.Step()


def test_a_success_above_a_failure_is_noise_the_lowest_failure_bounds() -> None:
    probes = [*measured([10, 20, 40], capacity=30), loadsearch.Probe(80, ())]
    found = loadsearch.bracket(probes)
    assert found.highest_meeting and found.highest_meeting.level == 20
    assert found.lowest_failing and found.lowest_failing.level == 40


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        (PointMetrics(ttft_p95_ms=90, error_rate=0.0, held_load=True), []),
        (PointMetrics(ttft_p95_ms=110, error_rate=0.0), ["ttftP95Ms"]),
        (PointMetrics(ttft_p95_ms=None, error_rate=1.0), ["ttftP95Ms", "errorRate"]),
        (PointMetrics(ttft_p95_ms=90, error_rate=0.0, held_load=False), ["heldLoad"]),
        (None, ["pointFailed"]),
    ],
)
def test_why_a_level_fails(metrics: PointMetrics | None, expected: list[str]) -> None:
    assert loadsearch.failures(metrics, SLOS, SEARCH) == expected


def sweep(**load: Any) -> BenchmarkSweepSpec:
    return BenchmarkSweepSpec.model_validate(
        {
            "targets": [{"name": "a", "deploymentRef": "dep-a"}, {"name": "b", "deploymentRef": "dep-b"}],
            "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}},
            "load": {"mode": "open-loop", "requests": 100, "search": {"min": 10, "max": 1000}, **load},
            "slos": {"ttftP95Ms": 100},
        }
    )


def finish(point: PointStatus, capacity: dict[str, float]) -> None:
    """What the benchmark pod would report: TTFT within the SLO up to the target's capacity."""
    assert point.request_rate is not None and point.deployment is not None
    within = point.request_rate <= capacity[point.deployment]
    point.phase = PointPhase.SUCCEEDED
    point.ttft_p95_ms = 50.0 if within else 500.0
    point.error_rate, point.held_load = 0.0, True
    point.output_tokens_per_second = point.request_rate * 64


def test_the_policy_runs_one_search_per_target_to_its_frontier() -> None:
    """Drives the policy as the reconcile does: the first pass stores the grid's points (one first
    level per target), each later pass ends the running points and adds what ``advance`` returns."""
    spec = sweep()
    targets = expand_targets(ChildNames("sw", "ml"), spec)
    points = [point_status(p) for p in expand_points(targets, spec)]
    assert [(p.index, p.deployment, p.request_rate) for p in points] == [(0, "dep-a", 10), (1, "dep-b", 10)]
    capacity = {"dep-a": 137.0, "dep-b": 15.0}
    for _ in range(40):
        # the reconcile rebuilds the grid from the stored points each pass
        grid = {p.index: p for p in expand_points(targets, spec, points)}
        assert [grid[p.index].load.request_rate for p in points] == [p.request_rate for p in points]
        for point in points:
            if point.phase is PointPhase.PENDING:
                finish(point, capacity)
        step = advance(spec, targets, points)
        points += [point_status(p) for p in step.new_points]
        if step.done:
            break
    assert step.done and not step.new_points
    assert [p.index for p in points] == list(range(len(points)))
    a, b = step.frontier
    # precision 0.1 (the default): a ends between 134 (met) and 146, b between 14.1 and 15.4
    assert (a.target, a.max_load, a.first_failing_load, a.limited_by) == ("a", 134, 146, ["ttftP95Ms"])
    assert a.point is not None and points[a.point].request_rate == 134 and a.load == "rate=134/s (poisson)"
    assert a.output_tokens_per_second == 134 * 64 and a.points == 8
    assert (b.target, b.max_load, b.first_failing_load, b.points) == ("b", 14.1, 15.4, 5)


def test_a_failed_point_ends_its_search_and_says_so() -> None:
    spec = sweep()
    targets = expand_targets(ChildNames("sw", "ml"), spec)
    points = [point_status(p) for p in expand_points(targets, spec)]
    points[0].phase = PointPhase.FAILED
    step = advance(spec, targets, points)
    assert [p.target.deployment for p in step.new_points] == []  # b's first point still runs
    assert step.frontier[0].done and step.frontier[0].limited_by == ["pointFailed"]
    assert step.frontier[0].max_load is None and not step.frontier[1].done


def test_closed_loop_search_points_carry_concurrency() -> None:
    spec = sweep(mode="closed-loop", search={"min": 1, "max": 8})
    targets = expand_targets(ChildNames("sw", "ml"), spec)
    (first, _) = expand_points(targets, spec)
    assert first.load.concurrency == 1 and first.load.label == "concurrency=1"
    status = point_status(first)
    assert (status.concurrency, status.request_rate) == (1, None)


def test_without_search_the_policy_adds_nothing() -> None:
    spec = BenchmarkSweepSpec.model_validate(
        {
            "targets": [{"name": "a", "deploymentRef": "dep-a"}],
            "workload": {"synthetic": {"inputTokens": {"mean": 1}, "outputTokens": {"mean": 1}}},
            "load": {"concurrency": [1, 2], "requests": 10},
        }
    )
    targets = expand_targets(ChildNames("sw", "ml"), spec)
    step = advance(spec, targets, [point_status(p) for p in expand_points(targets, spec)])
    assert step.new_points == [] and step.frontier == [] and step.done
