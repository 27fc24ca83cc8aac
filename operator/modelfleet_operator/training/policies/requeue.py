"""A gang that timed out waiting for nodes is queued again (``onSchedulingTimeout: Requeue``) (pure).

The gang was released (its Job deleted, so the workers that had found a node free it) and is created
again after a backoff that doubles with each of the job's requeues, from ``requeueBackoffSeconds`` up
to ``maxRequeueBackoffSeconds`` (the shape of Kueue's own requeuing strategy). It is no failure of the
workload: requeues are counted apart from the restarts that ``backoffLimit`` bounds, and the next gang
is the same attempt (same ``restarts``), so nothing about the run changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from modelfleet_operator.conditions import rfc3339
from modelfleet_operator.training.policies.gang import GangVerdict, placement_advice


@dataclass(frozen=True, kw_only=True)
class Requeue:
    requeues: int
    """The job's requeues, this one included (``status.requeues``)."""
    retry_at: datetime
    """When the gang is created again (``status.requeueTime``)."""
    message: str


def backoff_seconds(requeue: int, *, base_seconds: int, max_seconds: int) -> int:
    """The wait after the job's ``requeue``-th requeue (from 1): ``base_seconds`` doubled for each
    requeue before it, at most ``max_seconds``."""
    delay = base_seconds
    for _ in range(requeue - 1):
        if delay >= max_seconds:
            break
        delay *= 2
    return min(delay, max_seconds)


def requeue(
    verdict: GangVerdict,
    *,
    requeues: int,
    now: datetime,
    base_seconds: int,
    max_seconds: int,
    placement: str,
) -> Requeue:
    """``requeues``: the job's requeues before this one; ``verdict`` the timed-out gang's."""
    count = requeues + 1
    delay = backoff_seconds(count, base_seconds=base_seconds, max_seconds=max_seconds)
    retry_at = now + timedelta(seconds=delay)
    message = (
        f"{verdict.message} The gang was released (its workers deleted, so none holds a node) and is "
        f"created again at {rfc3339(retry_at)}, in {delay}s (requeue {count}; the wait starts at "
        "spec.requeueBackoffSeconds and doubles with each requeue, up to spec.maxRequeueBackoffSeconds). "
        "Requeues do not count against spec.backoffLimit. To place it sooner, "
        f"{placement_advice(placement)}; to fail instead, set spec.onSchedulingTimeout: Fail."
    )
    return Requeue(requeues=count, retry_at=retry_at, message=message)
