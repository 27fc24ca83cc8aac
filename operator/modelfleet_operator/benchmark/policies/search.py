"""A sweep's load search (``load.search``) over its points: the points to add and the frontier.

Each (target, token lengths) pair is one search. Its points are the sweep's points of that deployment
and those lengths, in index order; the levels they measured, and whether each met the SLOs, decide the
next level (``modelfleet_api.loadsearch``, the same search ``modelfleet-bench sweep`` runs). A new
point is added only once the search's previous point ended, so a target is still measured one point at
a time, and the new point takes the next free index.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from modelfleet_api import loadsearch
from modelfleet_api.benchmark import LoadMode
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec, FrontierEntry, PointStatus, TokenLengths
from modelfleet_api.constants import PointPhase

from modelfleet_operator.benchmark.grid import Point, Target


@dataclass(frozen=True, kw_only=True)
class SearchStep:
    new_points: list[Point]
    """Points to add to the sweep (pending), one per search whose previous point ended."""
    frontier: list[FrontierEntry]
    """Every search's standing, in target then token-lengths order."""

    @property
    def done(self) -> bool:
        return all(entry.done for entry in self.frontier)


def _lengths_key(lengths: TokenLengths | None) -> tuple[int | None, int | None]:
    return (lengths.input_tokens, lengths.output_tokens) if lengths else (None, None)


def _level(point: PointStatus) -> float:
    level = point.concurrency if point.concurrency is not None else point.request_rate
    if level is None:
        raise ValueError(f"status.points[{point.index}]: a search point needs its concurrency or requestRate")
    return float(level)


def _probe(point: PointStatus, spec: BenchmarkSweepSpec) -> loadsearch.Probe:
    assert spec.load.search is not None
    if point.phase is PointPhase.SUCCEEDED:
        why = loadsearch.failures(point, spec.slos, spec.load.search)
    elif point.phase is PointPhase.FAILED:
        why = [loadsearch.POINT_FAILED]
    else:
        return loadsearch.Probe(_level(point))
    return loadsearch.Probe(_level(point), tuple(why))


def advance(spec: BenchmarkSweepSpec, targets: list[Target], points: list[PointStatus]) -> SearchStep:
    """The points to add now and the frontier so far (nothing to add without ``load.search``)."""
    search = spec.load.search
    if search is None:
        return SearchStep(new_points=[], frontier=[])
    closed = spec.load.mode is LoadMode.CLOSED_LOOP
    next_index = max((p.index for p in points), default=-1) + 1
    lengths_axis: list[TokenLengths | None] = list(spec.token_lengths) or [None]
    new_points: list[Point] = []
    frontier: list[FrontierEntry] = []
    for target, lengths in itertools.product(targets, lengths_axis):
        key = _lengths_key(lengths)
        series = [
            p
            for p in sorted(points, key=lambda p: p.index)
            if p.deployment == target.deployment and (p.input_tokens, p.output_tokens) == key
        ]
        probes = [_probe(p, spec) for p in series]
        step = loadsearch.next_step(search, closed, probes)
        if step.next_level is not None:
            load = spec.load.point_at(step.next_level)
            new_points.append(Point(index=next_index, target=target, lengths=lengths, load=load))
            next_index += 1
        frontier.append(_entry(target, lengths, series, probes, step, spec))
    return SearchStep(new_points=new_points, frontier=frontier)


def _entry(
    target: Target,
    lengths: TokenLengths | None,
    series: list[PointStatus],
    probes: list[loadsearch.Probe],
    step: loadsearch.Step,
    spec: BenchmarkSweepSpec,
) -> FrontierEntry:
    assert spec.load.search is not None
    found = loadsearch.bracket(probes)
    best = None
    if found.highest_meeting is not None:
        best = next(p for p, probe in zip(series, probes, strict=True) if probe is found.highest_meeting)
    return FrontierEntry(
        target=target.name,
        input_tokens=lengths.input_tokens if lengths else None,
        output_tokens=lengths.output_tokens if lengths else None,
        done=step.done,
        max_load=found.highest_meeting.level if found.highest_meeting else None,
        point=best.index if best else None,
        load=best.load if best else None,
        output_tokens_per_second=best.output_tokens_per_second if best else None,
        goodput=best.goodput if best else None,
        first_failing_load=found.lowest_failing.level if found.lowest_failing else None,
        limited_by=loadsearch.limited_by(spec.load.search, probes),
        points=len(series),
    )
