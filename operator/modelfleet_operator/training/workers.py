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
    pod: str | None
    """None when only the worker Job said that a worker failed (its pod is gone)."""
    evicted: bool
    """The pod was evicted or preempted (spot reclaim, node drain) rather than exiting on its own."""
    detail: str
    """Exit code, reason and message, for the condition message."""
    node: str | None = None
    exit_code: int | None = None
    message: str | None = None
    """The container's termination message: what the runtime wrote (the error and its last log
    lines), or the kubelet's tail of its log when it wrote nothing."""
    finished_at: str | None = None


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


def _disrupted(pod: Manifest) -> Manifest | None:
    """The pod's DisruptionTarget condition when it is True: the pod is being or was evicted (a node
    drain, the Eviction API), preempted or taken by a node going away."""
    disruption = pod_condition(pod, "DisruptionTarget")
    return disruption if disruption is not None and disruption.get("status") == c.CONDITION_TRUE else None


def _failure(pod: Manifest) -> WorkerFailure:
    status = pod.get("status", {})
    disruption = _disrupted(pod)
    evicted = status.get("reason") == "Evicted" or disruption is not None
    parts: list[str] = []
    terminated: Manifest = {}
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated:
            parts.append(f"exit code {terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})")
            if terminated.get("message"):
                parts.append(str(terminated["message"]).strip())
            break
    if parts and disruption is not None:  # stopped because it was disrupted: say how first
        parts.insert(0, _disruption_text(disruption))
    if not parts:
        parts.append(status.get("reason") or "Failed")
        if disruption is not None and disruption.get("message"):
            parts.append(str(disruption["message"]))
    if status.get("message"):
        parts.append(str(status["message"]))
    message = str(terminated.get("message") or "").strip()
    return WorkerFailure(
        pod=pod["metadata"]["name"],
        evicted=evicted,
        detail=": ".join(parts),
        node=(pod.get("spec") or {}).get("nodeName"),
        exit_code=terminated.get("exitCode"),
        message=message or None,
        finished_at=terminated.get("finishedAt"),
    )


STOPPING = "it was told to stop and saves a checkpoint in its grace period"


def _disruption_text(disruption: Manifest) -> str:
    """``EvictionByEvictionAPI (Eviction API: evicting)``."""
    reason = disruption.get("reason") or "DisruptionTarget"
    return f"{reason} ({disruption['message']})" if disruption.get("message") else reason


def _being_evicted(pod: Manifest) -> WorkerFailure:
    """A worker still stopping after an eviction: it has its grace period to save a checkpoint."""
    disruption = _disrupted(pod) or {}
    return WorkerFailure(
        pod=pod["metadata"]["name"],
        evicted=True,
        detail=f"{_disruption_text(disruption)}: {STOPPING}",
        node=(pod.get("spec") or {}).get("nodeName"),
    )


def summarize(pods: Sequence[Manifest]) -> WorkerSummary:
    """Pods being deleted count for nothing, except a disrupted worker (evicted by a drain, preempted):
    the gang has lost it, whether or not it has stopped yet."""
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    leaving = [
        p
        for p in pods
        if p["metadata"].get("deletionTimestamp")
        and _disrupted(p) is not None
        and p.get("status", {}).get("phase") != "Succeeded"
    ]
    scheduled = running = ready = 0
    succeeded: set[int] = set()
    failure: WorkerFailure | None = next(
        (_failure(p) if p["status"].get("phase") == "Failed" else _being_evicted(p) for p in leaving), None
    )
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
