"""Kubernetes ``metav1.Condition`` handling with JobSet's semantics, on the typed ``Condition`` model.

A condition keeps its ``lastTransitionTime`` unless its status flips; reason, message and
observedGeneration are refreshed in place. The conditions of other objects (pods, Jobs) are read as
the plain dicts they arrive in (``object_condition``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from modelfleet_api.common import Condition
from modelfleet_api.constants import CONDITION_FALSE, CONDITION_TRUE


def rfc3339(moment: datetime) -> str:
    """The timestamp format Kubernetes writes (second precision, ``Z`` for UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == CONDITION_TRUE


def object_condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """A condition of another object's ``status.conditions`` (a pod's ``PodScheduled``, ``Ready``...)."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            found: dict[str, Any] = condition
            return found
    return None


pod_condition = object_condition


def unschedulable_message(pod: dict[str, Any]) -> str | None:
    """What the scheduler said of a pod it cannot place (``PodScheduled`` False, reason
    ``Unschedulable``), or None while it is placed or not yet tried."""
    scheduled = pod_condition(pod, "PodScheduled")
    if (
        scheduled
        and scheduled.get("status") == CONDITION_FALSE
        and scheduled.get("reason") == "Unschedulable"
    ):
        return str(scheduled.get("message") or "no node fits")
    return None


def set_condition(
    conditions: Sequence[Condition],
    *,
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """A new list with the condition of ``type_`` set; the others are untouched, order kept."""
    status_text = status if isinstance(status, str) else (CONDITION_TRUE if status else CONDITION_FALSE)
    previous = find(conditions, type_)
    transition = (
        previous.last_transition_time
        if previous is not None and previous.status == status_text
        else now.replace(microsecond=0)
    )
    updated = Condition(
        type=type_,
        status=status_text,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def transitions(before: Sequence[Condition], after: Sequence[Condition]) -> list[Condition]:
    """Conditions of ``after`` that are new or whose status or reason changed (each one an event)."""
    changed = []
    for condition in after:
        old = find(before, condition.type)
        if old is None or (old.status, old.reason) != (condition.status, condition.reason):
            changed.append(condition)
    return changed
