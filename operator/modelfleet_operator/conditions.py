"""Kubernetes ``metav1.Condition`` handling with JobSet's semantics.

A condition keeps its ``lastTransitionTime`` unless its status flips; reason, message and
observedGeneration are refreshed in place. Conditions are plain dicts in wire form (camelCase), the
shape the status subresource stores, so comparing old and new status is a dict comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from modelfleet_api.constants import CONDITION_FALSE, CONDITION_TRUE

Condition = dict[str, Any]


def rfc3339(moment: datetime) -> str:
    """The timestamp format Kubernetes writes (second precision, ``Z`` for UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def pod_condition(pod: dict[str, Any], type_: str) -> Condition | None:
    """A condition of an object's ``status.conditions`` (a pod's ``PodScheduled``, ``Ready``, ...)."""
    return find((pod.get("status") or {}).get("conditions") or [], type_)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.get("status") == CONDITION_TRUE


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
        previous["lastTransitionTime"]
        if previous is not None and previous.get("status") == status_text and "lastTransitionTime" in previous
        else rfc3339(now)
    )
    updated: Condition = {
        "type": type_,
        "status": status_text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    if previous is None:
        return [*conditions, updated]
    return [updated if c.get("type") == type_ else c for c in conditions]
