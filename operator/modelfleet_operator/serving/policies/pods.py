"""What the server pods say, from their status only (pure): the problem to report and the start-up
breakdown of the newest replica."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelfleet_api import constants as c

from modelfleet_operator.conditions import pod_condition, unschedulable_message

Manifest = dict[str, Any]
CRASH_LOOP = "CrashLoopBackOff"
IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})


@dataclass(frozen=True, kw_only=True)
class PodProblem:
    reason: str
    """``REASON_ENGINE_CRASHING``, ``REASON_MODEL_DOWNLOAD_FAILED``, ``REASON_UNSCHEDULABLE`` or
    ``REASON_REPLICAS_UNAVAILABLE`` (image pulls)."""
    pod: str
    message: str
    """What happened and what to do next."""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _last_exit(status: dict[str, Any]) -> str:
    terminated = (status.get("lastState") or {}).get("terminated") or (status.get("state") or {}).get(
        "terminated"
    )
    if not terminated:
        return ""
    text = f"; last exit code {terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})"
    if terminated.get("message"):
        text += f": {str(terminated['message']).strip()}"
    return text


def _crashing(status: dict[str, Any]) -> bool:
    waiting = (status.get("state") or {}).get("waiting") or {}
    return bool(waiting.get("reason") == CRASH_LOOP)


def _init_failed(status: dict[str, Any]) -> bool:
    terminated = (status.get("state") or {}).get("terminated") or {}
    return _crashing(status) or bool(terminated and terminated.get("exitCode", 0) != 0)


def _problem_of(pod: Manifest) -> PodProblem | None:
    name = pod["metadata"]["name"]
    status = pod.get("status", {})
    for init in status.get("initContainerStatuses") or []:
        if _init_failed(init):
            return PodProblem(
                reason=c.REASON_MODEL_DOWNLOAD_FAILED,
                pod=name,
                message=(
                    f"Pod {name}: the model download failed ({init.get('restartCount', 0)} restarts"
                    f"{_last_exit(init)}). Check the model URI and credentials: "
                    f"kubectl logs {name} -c {init['name']}."
                ),
            )
    for container in status.get("containerStatuses") or []:
        if _crashing(container):
            return PodProblem(
                reason=c.REASON_ENGINE_CRASHING,
                pod=name,
                message=(
                    f"Pod {name}: the engine keeps restarting ({container.get('restartCount', 0)} restarts"
                    f"{_last_exit(container)}). See kubectl logs {name} -c {container['name']} --previous."
                ),
            )
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            return PodProblem(
                reason=c.REASON_REPLICAS_UNAVAILABLE,
                pod=name,
                message=(
                    f"Pod {name}: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
                    + ". Check spec.image and the pull secret."
                ),
            )
    said = unschedulable_message(pod)
    if said is not None:
        return PodProblem(
            reason=c.REASON_UNSCHEDULABLE,
            pod=name,
            message=(
                f"Pod {name} cannot be scheduled: {said}. "
                f"Wait for capacity, or change spec.resources (instanceType, nodePool, spot)."
            ),
        )
    return None


_SEVERITY = (
    c.REASON_ENGINE_CRASHING,
    c.REASON_MODEL_DOWNLOAD_FAILED,
    c.REASON_REPLICAS_UNAVAILABLE,
    c.REASON_UNSCHEDULABLE,
)


def live(pods: Sequence[Manifest]) -> list[Manifest]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def find_problem(pods: Sequence[Manifest]) -> PodProblem | None:
    """The most severe problem among the live pods (a crashing engine before a pending pod)."""
    problems = [p for p in (_problem_of(pod) for pod in live(pods)) if p is not None]
    if not problems:
        return None
    return min(problems, key=lambda p: (_SEVERITY.index(p.reason), p.pod))


def startup_breakdown(pods: Sequence[Manifest]) -> dict[str, Any] | None:
    """Seconds from the newest pod's creation to: bound to a node, model downloaded (its init container
    finished), engine loaded (every container ready: the health endpoint answers) and pod ready."""
    candidates = live(pods)
    if not candidates:
        return None
    pod = max(candidates, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
    created = _time(pod["metadata"]["creationTimestamp"])
    assert created is not None

    def since(moment: datetime | None) -> float | None:
        return None if moment is None else max((moment - created).total_seconds(), 0.0)

    def true_since(type_: str) -> float | None:
        condition = pod_condition(pod, type_)
        if condition is None or condition.get("status") != c.CONDITION_TRUE:
            return None
        return since(_time(condition.get("lastTransitionTime")))

    downloaded = None
    inits = pod.get("status", {}).get("initContainerStatuses") or []
    finished = [((s.get("state") or {}).get("terminated") or {}) for s in inits]
    if inits and all(f.get("exitCode") == 0 for f in finished):
        downloaded = since(max(t for f in finished if (t := _time(f.get("finishedAt"))) is not None))
    breakdown = {
        "pod": pod["metadata"]["name"],
        "scheduledSeconds": true_since("PodScheduled"),
        "modelDownloadedSeconds": downloaded,
        "engineLoadedSeconds": true_since("ContainersReady"),
        "readySeconds": true_since("Ready"),
    }
    return {key: value for key, value in breakdown.items() if value is not None}
