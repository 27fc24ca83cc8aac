"""What a controller's pure ``plan`` returns, and the typed status draft it builds it with (pure).

Every controller reconciles in the same shape: *observe* (reads only, from kopf's indexes and the
object kopf holds), *plan* (pure: from the resource, its stored status, what was observed and the time
to a ``Plan``), *act* (the only writes of children: server-side apply of the plan's children that are
missing or drifted, and a prune of owned children it no longer names) and *report* (one status write,
then events). This module is the contract between plan and the engine (``common.reconcile``) that
acts and reports.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from modelfleet_api import constants as c
from modelfleet_api.common import Condition, NodePlacement

from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.live import Live
from modelfleet_operator.common.references import Lookup, references_condition
from modelfleet_operator.conditions import find, set_condition

Manifest = dict[str, Any]
ChildKey = tuple[str, str]
"""(kind, name) of a child in its owner's namespace."""


class Status(Protocol):
    """What every kind's status model has (``TrainingJobStatus`` and the others)."""

    conditions: list[Condition]
    observed_generation: int | None


StatusT = TypeVar("StatusT", bound=Status)


def key_of(manifest: Manifest) -> ChildKey:
    return manifest["kind"], manifest["metadata"]["name"]


@dataclass(frozen=True, kw_only=True)
class Event:
    type: str
    """``Normal`` or ``Warning``."""
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class CapacityAsk:
    """Ask the capacity manager for ``nodes`` nodes of ``placement`` (``scheduled``: all pods placed)."""

    placement: NodePlacement
    nodes: int
    scheduled: bool


@dataclass(frozen=True)
class CapacityRelease:
    """Nothing is needed from the capacity manager any more (finished, suspended, scaled to zero)."""


RELEASE = CapacityRelease()


@dataclass(frozen=True, kw_only=True)
class Plan(Generic[StatusT]):
    status: StatusT
    """The whole new status; the engine writes the difference to the stored one."""
    apply: Sequence[Manifest] = ()
    """Children that must exist as built (the engine applies the missing ones wave by wave, ``Kind.wave``)."""
    keep: Collection[ChildKey] = frozenset()
    """Existing children left exactly as they are (a finished gang's Job keeps its pods' logs)."""
    hold: bool = False
    """Touch no child at all: neither apply nor prune (an invalid spec, a missing ServiceAccount)."""
    events: Sequence[Event] = ()
    """Posted after the status write, besides one per condition that changed."""
    requeue_at: datetime | None = None
    """When to pass again if nothing happens before (a timeout, a TTL); None: on the next event."""
    capacity: CapacityAsk | CapacityRelease | None = None
    """What to tell the capacity manager, when it is on; None: nothing (Kueue decides)."""
    delete_owner: bool = False
    """Delete the resource itself (``ttlSecondsAfterFinished`` passed)."""


def to_apply(plan: Plan[Any], children: Sequence[Live], compare: Any) -> list[Manifest]:
    """The plan's children that are missing, being deleted, or drifted (``compare(wanted, live)``)."""
    live = {(child.manifest["kind"], child.name): child for child in children}
    result = []
    for manifest in plan.apply:
        found = live.get(key_of(manifest))
        if found is None or found.deleting or compare(manifest, found):
            result.append(manifest)
    return result


def to_prune(plan: Plan[Any], children: Sequence[Live], owner_uid: str) -> list[Live]:
    """Owned children the plan neither applies nor keeps (and not already being deleted)."""
    wanted = {key_of(manifest) for manifest in plan.apply} | set(plan.keep)
    return [
        child
        for child in children
        if child.owned_by(owner_uid)
        and not child.deleting
        and (child.manifest["kind"], child.name) not in wanted
    ]


@dataclass
class Draft(Generic[StatusT]):
    """The status a plan is drafting, with the clock and generation its conditions are stamped with."""

    status: StatusT
    now: datetime
    generation: int | None
    events: list[Event] = field(default_factory=list)

    def condition(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )

    def drop_condition(self, type_: str) -> None:
        self.status.conditions = [x for x in self.status.conditions if x.type != type_]

    def find(self, type_: str) -> Condition | None:
        return find(self.status.conditions, type_)

    def service_account_ready(self, identity: RuntimeIdentity, exists: bool, namespace: str) -> bool:
        """Whether the pods' runtime ServiceAccount exists (True when none applies, and then no
        ServiceAccountReady is kept). Missing: ServiceAccountReady=False naming it and the fix; found
        after that: True."""
        if identity.service_account is None:
            self.drop_condition(c.COND_SERVICE_ACCOUNT_READY)
            return True
        found = f"ServiceAccount {identity.service_account} exists in namespace {namespace}."
        missing = (c.REASON_SERVICE_ACCOUNT_NOT_FOUND, identity.missing_message(namespace))
        return self._exists(
            c.COND_SERVICE_ACCOUNT_READY,
            missing=None if exists else missing,
            found=(c.REASON_SERVICE_ACCOUNT_FOUND, found),
        )

    def references_ready(self, lookup: Lookup, namespace: str) -> bool:
        """Whether every object the spec names exists (True when it names none, and then no
        ReferencesReady is kept). Missing: ReferencesReady=False naming each one, its field and the fix;
        all found after that: True."""
        if not lookup.named:
            self.drop_condition(c.COND_REFERENCES_READY)
            return True
        missing = list(lookup.missing)
        _, reason, message = references_condition(missing, namespace)
        _, found_reason, found_message = references_condition([], namespace)
        return self._exists(
            c.COND_REFERENCES_READY,
            missing=(reason, message) if missing else None,
            found=(found_reason, found_message),
        )

    def waiting_for_service_account(self) -> bool:
        """ServiceAccountReady=False as drafted by this pass or an earlier one."""
        return self._waiting(c.COND_SERVICE_ACCOUNT_READY)

    def waiting_for_references(self) -> bool:
        """ReferencesReady=False as drafted by this pass or an earlier one."""
        return self._waiting(c.COND_REFERENCES_READY)

    def _exists(self, type_: str, *, missing: tuple[str, str] | None, found: tuple[str, str]) -> bool:
        """The ``type_`` condition of something the pods need: False with ``missing``'s (reason,
        message) while it is missing; True with ``found``'s once it exists, set only if the condition
        was there (a resource that never waited carries none). Whether it exists."""
        if missing is not None:
            self.condition(type_, False, *missing)
            return False
        if self.find(type_) is not None:
            self.condition(type_, True, *found)
        return True

    def _waiting(self, type_: str) -> bool:
        found = self.find(type_)
        return found is not None and found.status == c.CONDITION_FALSE
