"""Gang scheduling: all workers get a node, or none hold GPUs.

A half-placed gang burns GPUs without training (torchrun waits for every rank), so when the
workers cannot all be placed within ``schedulingTimeoutSeconds`` the Job is deleted and the
TrainingJob fails with the scheduler's own reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelfleet_operator.training.workers import WorkerSummary


@dataclass(frozen=True, kw_only=True)
class GangVerdict:
    all_scheduled: bool
    timed_out: bool
    unschedulable: bool
    """The scheduler has reported a worker unschedulable (not merely not yet tried)."""
    message: str


def gang_verdict(
    summary: WorkerSummary,
    *,
    nodes: int,
    placement: str,
    waiting_since: datetime,
    now: datetime,
    timeout_seconds: int,
) -> GangVerdict:
    """``placement`` names where the workers should go (e.g. the VM size), for the message."""
    placed = summary.scheduled + len(summary.succeeded_indexes)
    if placed >= nodes:
        message = f"all {nodes} workers have a node"
        return GangVerdict(all_scheduled=True, timed_out=False, unschedulable=False, message=message)
    waited = (now - waiting_since).total_seconds()
    timed_out = timeout_seconds > 0 and waited >= timeout_seconds
    scheduler = (
        f" The scheduler says: {summary.unschedulable_message}" if summary.unschedulable_message else ""
    )
    if timed_out:
        message = (
            f"{placed}/{nodes} workers found a {placement} node within {timeout_seconds}s, so the workers "
            f"were deleted.{scheduler} Free or add {placement} nodes, or lower resources.nodes or "
            "resources.gpusPerNode, then recreate the TrainingJob."
        )
    else:
        limit = f"gives up after {timeout_seconds}s" if timeout_seconds > 0 else "waits without a time limit"
        message = f"{placed}/{nodes} workers have a {placement} node; the gang {limit}.{scheduler}"
    return GangVerdict(
        all_scheduled=False,
        timed_out=timed_out,
        unschedulable=bool(summary.unschedulable_message),
        message=message,
    )
