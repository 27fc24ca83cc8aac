"""Which targets to bring up and which points to start now.

At most ``maxParallelPoints`` points run at once, each on a different target, and a target runs one
point at a time so points do not disturb each other. Only the first ``maxParallelPoints`` targets
(in spec order) that still have points to run are *active*: their expanded deployments exist, the
others are created later (and deleted once their points ended), so a sweep never holds more GPU
deployments than it can measure at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.constants import PointPhase

ENDED = (PointPhase.SUCCEEDED, PointPhase.FAILED)


@dataclass(frozen=True, kw_only=True)
class Plan:
    active: list[str]
    """Deployments of the active targets, in order."""
    finished: list[str]
    """Deployments whose points all ended."""


def plan(points: list[PointStatus], deployments: list[str], max_parallel: int) -> Plan:
    open_targets = [d for d in deployments if any(p.deployment == d and p.phase not in ENDED for p in points)]
    return Plan(
        active=open_targets[:max_parallel], finished=[d for d in deployments if d not in open_targets]
    )


def points_to_start(points: list[PointStatus], ready: set[str], max_parallel: int) -> list[PointStatus]:
    """The next pending point of each ready target that runs none, within the parallelism left."""
    running = [p for p in points if p.phase is PointPhase.RUNNING]
    busy = {p.deployment for p in running}
    chosen: list[PointStatus] = []
    for point in points:
        if len(running) + len(chosen) >= max_parallel:
            break
        if point.phase is PointPhase.PENDING and point.deployment in ready and point.deployment not in busy:
            chosen.append(point)
            busy.add(point.deployment)
    return chosen
