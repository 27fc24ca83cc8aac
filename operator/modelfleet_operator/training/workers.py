"""What the worker pods of one attempt say about the gang, read from their status only (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelfleet_api import constants as c

from modelfleet_operator.conditions import pod_condition

Manifest = dict[str, Any]
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True, kw_only=True)
class WorkerFailure:
    pod: str
    evicted: bool
    """The pod was evicted or preempted (spot reclaim, node drain) rather than exiting on its own."""
    detail: str
    """Exit code, reason and message, for the condition message."""


@dataclass(frozen=True, kw_only=True)
class WorkerSummary:
    pods: int
    """Worker pods of this attempt that exist and are not being deleted."""
    scheduled: int
    """Of those, bound to a node and not finished: they hold GPUs."""
    running: int
    ready: int
    succeeded_indexes: frozenset[int]
    failure: WorkerFailure | None
    unschedulable_message: str | None
    """The scheduler's own reason (PodScheduled=False message) for one pending worker, if any."""


def _failure(pod: Manifest) -> WorkerFailure:
    status = pod.get("status", {})
    disruption = pod_condition(pod, "DisruptionTarget")
    evicted = status.get("reason") == "Evicted" or (
        disruption is not None and disruption.get("status") == c.CONDITION_TRUE
    )
    parts: list[str] = []
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            parts.append(f"exit code {terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})")
            if terminated.get("message"):
                parts.append(str(terminated["message"]).strip())
            break
    if not parts:
        parts.append(status.get("reason") or "Failed")
        if disruption is not None and disruption.get("message"):
            parts.append(str(disruption["message"]))
    if status.get("message"):
        parts.append(str(status["message"]))
    return WorkerFailure(pod=pod["metadata"]["name"], evicted=evicted, detail=": ".join(parts))


def summarize(pods: Sequence[Manifest]) -> WorkerSummary:
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    scheduled = running = ready = 0
    succeeded: set[int] = set()
    failure: WorkerFailure | None = None
    unschedulable: str | None = None
    for pod in live:
        phase = pod.get("status", {}).get("phase")
        if phase == "Succeeded":
            index = pod["metadata"].get("labels", {}).get(COMPLETION_INDEX_LABEL)
            if index is not None:
                succeeded.add(int(index))
            continue
        if phase == "Failed":
            failure = failure or _failure(pod)
            continue
        if pod.get("spec", {}).get("nodeName"):
            scheduled += 1
        else:
            pod_scheduled = pod_condition(pod, "PodScheduled")
            if (
                pod_scheduled
                and pod_scheduled.get("status") == c.CONDITION_FALSE
                and pod_scheduled.get("message")
            ):
                unschedulable = unschedulable or str(pod_scheduled["message"])
        if phase == "Running":
            running += 1
            ready_condition = pod_condition(pod, "Ready")
            if ready_condition is not None and ready_condition.get("status") == c.CONDITION_TRUE:
                ready += 1
    return WorkerSummary(
        pods=len(live),
        scheduled=scheduled,
        running=running,
        ready=ready,
        succeeded_indexes=frozenset(succeeded),
        failure=failure,
        unschedulable_message=unschedulable,
    )
