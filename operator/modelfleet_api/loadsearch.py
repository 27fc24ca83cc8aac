"""The load search of a sweep (``LoadPattern.search``): from the levels measured so far, the next one to
measure, or the end of the search.

Pure and shared on purpose: the operator runs it over a BenchmarkSweep's points, ``modelfleet-bench
sweep`` over the points it measures itself, so a search picks the same levels wherever it runs.
The search assumes that a level failing the SLOs means every higher level fails them too; when noise
breaks that (a higher level met them after a lower one failed), the lowest failing level bounds the
answer and higher successes are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelfleet_api.benchmark import LoadSearch, Slos
from modelfleet_api.benchmarksweep import PointMetrics

POINT_FAILED = "pointFailed"
"""Why a level failed: its point produced no figures."""
HELD_LOAD = "heldLoad"
"""Why a level failed: the client did not keep its schedule."""
ERROR_RATE = "errorRate"
"""Why a level failed: more requests failed than ``maxErrorRate`` allows."""
SEARCH_MAX = "search.max"
"""What limited a search whose highest allowed level met the SLOs."""
SIGNIFICANT_DIGITS = 3
"""Rates chosen by bisection are rounded to this many significant digits, to read well in labels."""


def slo_failures(metrics: PointMetrics, slos: Slos) -> list[str]:
    """The SLOs (wire names) whose p95 is above its threshold or was not measured."""
    failed = []
    for name, field in Slos.model_fields.items():
        limit = getattr(slos, name)
        if limit is None:
            continue
        value = getattr(metrics, name)
        if value is None or value > limit:
            failed.append(field.alias or name)
    return failed


def failures(metrics: PointMetrics | None, slos: Slos, search: LoadSearch) -> list[str]:
    """Why a measured level does not meet the SLOs (empty: it meets them)."""
    if metrics is None:
        return [POINT_FAILED]
    found = slo_failures(metrics, slos)
    if metrics.held_load is False:
        found.append(HELD_LOAD)
    if metrics.error_rate is not None and metrics.error_rate > search.max_error_rate:
        found.append(ERROR_RATE)
    return found


@dataclass(frozen=True)
class Probe:
    """A level of the search and, once measured, why it failed (empty: it met the SLOs)."""

    level: float
    failures: tuple[str, ...] | None = None
    """None while the level is being measured."""

    @property
    def measured(self) -> bool:
        return self.failures is not None

    @property
    def meets(self) -> bool:
        return self.failures == ()


@dataclass(frozen=True)
class Bracket:
    """Where the search stands: the highest level that met the SLOs below the lowest that did not."""

    highest_meeting: Probe | None
    lowest_failing: Probe | None


def bracket(probes: Sequence[Probe]) -> Bracket:
    failing = [p for p in probes if p.measured and not p.meets]
    high = min(failing, key=lambda p: p.level, default=None)
    meeting = [p for p in probes if p.meets and (high is None or p.level < high.level)]
    return Bracket(max(meeting, key=lambda p: p.level, default=None), high)


@dataclass(frozen=True)
class Step:
    """The search's decision after the probes so far."""

    next_level: float | None = None
    """The level to measure next (None: wait for the one being measured, or the search is done)."""
    done: bool = False


def _round(value: float) -> float:
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(value))
    return round(value, digits)


def next_step(search: LoadSearch, closed_loop: bool, probes: Sequence[Probe]) -> Step:
    """Double from ``min`` while levels meet the SLOs, then bisect (see ``LoadSearch``)."""
    if not probes:
        return Step(next_level=search.min)
    if not all(p.measured for p in probes):
        return Step()
    if len(probes) >= search.max_points:
        return Step(done=True)
    found = bracket(probes)
    low, high = found.highest_meeting, found.lowest_failing
    if low is None:  # even the first level failed
        return Step(done=True)
    if high is None:
        if low.level >= search.max:
            return Step(done=True)
        return _unless_measured(min(low.level * 2, search.max), probes)
    if closed_loop:
        if high.level - low.level <= 1:
            return Step(done=True)
        return _unless_measured(float((int(low.level) + int(high.level)) // 2), probes)
    if (high.level - low.level) / low.level <= search.precision:
        return Step(done=True)
    middle = _round(math.sqrt(low.level * high.level))
    if not low.level < middle < high.level:
        return Step(done=True)
    return _unless_measured(middle, probes)


def _unless_measured(level: float, probes: Sequence[Probe]) -> Step:
    """Measuring a level twice adds nothing: a repeat ends the search."""
    if any(p.level == level for p in probes):
        return Step(done=True)
    return Step(next_level=level)


def limited_by(search: LoadSearch, probes: Sequence[Probe]) -> list[str]:
    """What bounds the result: the failures of the lowest failing level, or ``search.max``."""
    found = bracket(probes)
    if found.lowest_failing is not None:
        return list(found.lowest_failing.failures or ())
    if found.highest_meeting is not None and found.highest_meeting.level >= search.max:
        return [SEARCH_MAX]
    return []
