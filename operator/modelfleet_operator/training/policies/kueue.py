"""A worker Job that Kueue holds suspended: waiting to be admitted, or evicted (preempted) (pure).

Kueue admits a gang as a whole: the Job is created suspended, no worker pod exists until Kueue has
reserved quota for all of them, and then Kueue clears ``spec.suspend`` and the Job controller creates
every worker at once. To evict an admitted gang (a preemption by a workload of higher priority, a
stopped queue) Kueue suspends the Job again: the Job controller deletes its pods, which get SIGTERM
and their grace period to save a checkpoint, and creates them anew when Kueue admits the gang again,
from which the runtime resumes. No worker failed, so nothing counts against ``backoffLimit``: the
Job controller removes its tracking finalizer before it deletes a suspended Job's pod, so the Job
does not count it failed either.

What Kueue says is on the Workload it made for the Job: ``QuotaReserved=False`` says why the gang
waits, ``Evicted=True`` why it was evicted (until the next admission sets it False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet_api import constants as c

from modelfleet_operator.conditions import object_condition

KUEUE_PREEMPTED = "Preempted"
"""The reason of a Workload's Evicted condition when Kueue preempted it."""


@dataclass(frozen=True, kw_only=True)
class KueueHold:
    reason: str
    """``WaitingForAdmission``, ``Preempted`` or ``EvictedByKueue``."""
    message: str
    evicted: bool
    """Kueue evicted the admitted gang (its workers were stopped), rather than not admitting it yet."""


def kueue_hold(workload: dict[str, Any] | None, *, queue: str | None) -> KueueHold:
    """``workload``: Kueue's Workload of the suspended Job as indexed (None: not made yet); ``queue``:
    the LocalQueue the spec names."""
    evicted = object_condition(workload or {}, "Evicted")
    reserved = object_condition(workload or {}, "QuotaReserved")
    waiting = (
        str(reserved.get("message") or "")
        if reserved is not None and reserved.get("status") == c.CONDITION_FALSE
        else ""
    )
    if evicted is not None and evicted.get("status") == c.CONDITION_TRUE:
        kueue_reason = str(evicted.get("reason") or "Evicted")
        said = f"{kueue_reason}: {evicted['message']}" if evicted.get("message") else kueue_reason
        reason = c.REASON_PREEMPTED if kueue_reason == KUEUE_PREEMPTED else c.REASON_EVICTED_BY_KUEUE
        until = f" (Kueue: {waiting})" if waiting else ""
        source = f" from queue {queue!r}" if queue else ""
        message = (
            f"Kueue evicted the gang{source} ({said}) and suspended its Job: the workers were "
            "told to stop and save a checkpoint in their grace period. The gang resumes from the latest "
            f"checkpoint when Kueue admits it again{until}; this does not count against spec.backoffLimit."
        )
        return KueueHold(reason=reason, message=message, evicted=True)
    said = f": {waiting}" if waiting else ""
    where = f" (queue {queue!r})" if queue else ""
    message = f"Waiting for Kueue to admit the workers as a whole{where}{said}."
    return KueueHold(reason=c.REASON_WAITING_FOR_ADMISSION, message=message, evicted=False)
