"""Reading a finished benchmark Job: the point's figures, or why there are none.

The benchmark pod writes ``PointMetrics`` as compact JSON into its termination message (the
contract with ``modelfleet-bench run``); the Job's pod keeps it after the Job ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_api.constants import PointPhase
from pydantic import ValidationError

from modelfleet_operator.conditions import unschedulable_message

MESSAGE_LIMIT = 512
"""Longest failure message kept in status (the tail of a log is enough to see what went wrong)."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a finished point ended."""

    phase: PointPhase
    metrics: PointMetrics | None = None
    reason: str | None = None
    message: str | None = None


def _condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            found: dict[str, Any] = cond
            return found
    return None


def termination_message(pods: list[dict[str, Any]], container: str, pod_phase: str) -> str | None:
    """The termination message of ``container`` in the (newest) pod of phase ``pod_phase``."""
    candidates = [p for p in pods if (p.get("status") or {}).get("phase") == pod_phase]
    candidates.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    for pod in candidates:
        for status in pod["status"].get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if status.get("name") == container and terminated.get("message"):
                message: str = terminated["message"]
                return message
    return None


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else "..." + text[-MESSAGE_LIMIT:]


def parse_metrics(message: str | None) -> Outcome:
    """The point's outcome from a succeeded Job's termination message."""
    if not message:
        return Outcome(
            phase=PointPhase.FAILED,
            reason=c.REASON_POINT_RESULT_MISSING,
            message="The benchmark Job succeeded but its pod left no termination message with the results.",
        )
    try:
        metrics = PointMetrics.model_validate_json(message)
    except ValidationError as error:
        return Outcome(
            phase=PointPhase.FAILED,
            reason=c.REASON_POINT_RESULT_UNPARSEABLE,
            message=_tail(f"Not a PointMetrics JSON document ({error.errors()[0]['msg']}): {message}"),
        )
    return Outcome(phase=PointPhase.SUCCEEDED, metrics=metrics)


def outcome(job: dict[str, Any], pods: list[dict[str, Any]], container: str) -> Outcome | None:
    """The outcome of a benchmark Job, or None while it runs."""
    if _condition(job, "Complete") is not None:
        return parse_metrics(termination_message(pods, container, "Succeeded"))
    failed = _condition(job, "Failed")
    if failed is None:
        return None
    detail = termination_message(pods, container, "Failed")
    why = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": ")
    return Outcome(
        phase=PointPhase.FAILED,
        reason=c.REASON_POINT_JOB_FAILED,
        message=_tail(f"{why}; pod said: {detail}" if detail else why),
    )


def unschedulable(pods: list[dict[str, Any]]) -> list[str]:
    """What the scheduler said of each of a running point's pods that it cannot place."""
    return [
        f"benchmark pod {pod['metadata']['name']} cannot be scheduled ({said})"
        for pod in pods
        if (said := unschedulable_message(pod)) is not None
    ]
