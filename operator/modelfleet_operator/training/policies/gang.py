"""Gang scheduling: all workers get a node, or none hold GPUs.

A half-placed gang burns GPUs without training (torchrun waits for every rank), so when the
workers cannot all be placed within ``schedulingTimeoutSeconds`` the gang is released (its Job is
deleted with its pods) and, per ``onSchedulingTimeout``, queued again (``policies.requeue``) or
failed with the scheduler's own reason.
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
    """Where the gang stands; once timed out, how far it got and the scheduler's reason, to which the
    plan adds what follows (``failed_message``, ``requeue.requeue``)."""


def gang_verdict(
    summary: WorkerSummary,
    *,
    nodes: int,
    placement: str,
    waiting_since: datetime,
    now: datetime,
    timeout_seconds: int,
) -> GangVerdict:
    """``placement`` names where the workers should go (e.g. the VM size), for the message;
    ``waiting_since`` is when the gang could first be placed (its Job started, or Kueue admitted it)."""
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
        message = f"{placed}/{nodes} workers found a {placement} node within {timeout_seconds}s.{scheduler}"
    else:
        limit = f"gives up after {timeout_seconds}s" if timeout_seconds > 0 else "waits without a time limit"
        message = f"{placed}/{nodes} workers have a {placement} node; the gang {limit}.{scheduler}"
    return GangVerdict(
        all_scheduled=False,
        timed_out=timed_out,
        unschedulable=bool(summary.unschedulable_message),
        message=message,
    )


def placement_advice(placement: str) -> str:
    """What the user can do about a gang that does not fit."""
    return f"free or add {placement} nodes, or lower resources.nodes or resources.gpusPerNode"


def failed_message(verdict: GangVerdict, placement: str) -> str:
    """A timed-out gang under ``onSchedulingTimeout: Fail``."""
    return (
        f"{verdict.message} The workers were deleted so that none holds a node, and the job failed "
        f"(spec.onSchedulingTimeout Fail). To run it, {placement_advice(placement)}, then recreate the "
        "TrainingJob."
    )
