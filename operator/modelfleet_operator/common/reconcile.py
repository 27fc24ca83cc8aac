"""The reconcile pass every controller runs, and its status write.

A pass reads the object, drafts the new status on a copy of the stored one, and writes it only when it
differs (Trainer's pattern, see ``status.status_patch``). Events for conditions whose status or reason
changed, and any events the pass queued, are posted only after the status write succeeded (JobSet's
rule), as Warning when the reason is one of the controller's warning reasons.

A spec the API server accepted but the operator cannot use is reported the same way by every
controller: phase ``Failed`` and ``Failed=True`` with reason ``InvalidSpec`` naming the field, no child
touched. It is not final: once the user applies a fixed spec, the next pass clears that condition and
the phase (``recover_from_invalid_spec``) and the controller carries on as for a new object.

Before creating or updating a pod owner (worker Job, serving Deployments, benchmark Jobs) every
controller checks that the runtime ServiceAccount its pods run as exists (``service_account_ready``):
the Job and ReplicaSet controllers cannot create pods without it, and would only say so in their own
``FailedCreate`` events. The controller's default accounts (per-job, the namespace's ``default``) are
not checked: the operator makes the first, the namespace controller the second.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

from modelfleet_api import API_VERSION
from modelfleet_api import constants as c
from modelfleet_api.common import NodePlacement
from pydantic import ValidationError

from modelfleet_operator.capacity.manager import CapacityManager
from modelfleet_operator.common.errors import InvalidSpec
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.owner import Owner
from modelfleet_operator.conditions import find, set_condition
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.status import status_patch

PostEvent = Callable[[Manifest, str, str, str], None]
"""(object, type Normal/Warning, reason, message)."""

OwnerT = TypeVar("OwnerT", bound=Owner)
SpecT = TypeVar("SpecT")
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def validation_problem(error: ValidationError) -> str:
    """``field.path: what is wrong`` of the first error pydantic found."""
    first = error.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


@dataclass
class Pass(Generic[OwnerT, SpecT]):
    """One reconcile pass over one object: what was read and the status being drafted."""

    body: Manifest
    owner: OwnerT
    spec: SpecT
    now: datetime
    written: dict[str, Any]
    """The status as stored (updated after every write of this pass)."""
    draft: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, reason, message) to post once the status is written."""

    @classmethod
    def start(cls, body: Manifest, owner: OwnerT, spec: SpecT, now: datetime) -> Self:
        """A pass whose draft starts as a copy of the stored status."""
        written = copy.deepcopy(body.get("status") or {})
        return cls(body=body, owner=owner, spec=spec, now=now, written=written, draft=copy.deepcopy(written))

    @property
    def generation(self) -> int | None:
        generation: int | None = self.body["metadata"].get("generation")
        return generation

    def condition(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.draft["conditions"] = set_condition(
            self.draft.get("conditions", []),
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )

    def drop_condition(self, type_: str) -> None:
        self.draft["conditions"] = [x for x in self.draft.get("conditions", []) if x.get("type") != type_]

    def ask_capacity(
        self, capacity: CapacityManager, placement: NodePlacement, nodes: int, *, scheduled: bool
    ) -> None:
        """Ask the capacity manager for ``nodes`` nodes of ``placement`` and set the conditions it answers."""
        for cond in capacity.ensure(self.owner.uid, placement, nodes, scheduled=scheduled):
            if not cond.only_if_present or find(self.draft.get("conditions", []), cond.type) is not None:
                self.condition(cond.type, cond.status, cond.reason, cond.message)

    def service_account_ready(self, kube: Kube, identity: RuntimeIdentity) -> bool:
        """Whether the pods' runtime ServiceAccount exists (True when none applies, and then no
        ServiceAccountReady is kept). Missing: sets ServiceAccountReady=False naming it and the fix;
        found after that: flips it to True."""
        name = identity.service_account
        if name is None:
            self.drop_condition(c.COND_SERVICE_ACCOUNT_READY)
            return True
        namespace = self.owner.namespace
        if kube.get("v1", "ServiceAccount", name, namespace) is None:
            message = identity.missing_message(namespace)
            self.condition(c.COND_SERVICE_ACCOUNT_READY, False, c.REASON_SERVICE_ACCOUNT_NOT_FOUND, message)
            return False
        if find(self.draft.get("conditions", []), c.COND_SERVICE_ACCOUNT_READY) is not None:
            message = f"ServiceAccount {name} exists in namespace {namespace}."
            self.condition(c.COND_SERVICE_ACCOUNT_READY, True, c.REASON_SERVICE_ACCOUNT_FOUND, message)
        return True

    def waiting_for_service_account(self) -> bool:
        """ServiceAccountReady=False as drafted by this pass or an earlier one."""
        found = find(self.draft.get("conditions", []), c.COND_SERVICE_ACCOUNT_READY)
        return found is not None and found.get("status") == c.CONDITION_FALSE

    def recover_from_invalid_spec(self) -> bool:
        """After ``InvalidSpec``, a spec that validates again: clear that failure and the phase it set.

        A resource that finished (it has a ``completionTime``) keeps its phase. True when it recovered.
        """
        failed = find(self.draft.get("conditions", []), c.COND_FAILED)
        if failed is None or failed.get("reason") != c.REASON_INVALID_SPEC:
            return False
        if self.draft.get("completionTime"):
            return False
        self.drop_condition(c.COND_FAILED)
        self.draft.pop("phase", None)
        return True


class StatusWriter:
    """Writes a controller's status subresource and posts its events (one per controller)."""

    def __init__(
        self, kube: Kube, kind: str, post_event: PostEvent, warning_reasons: Collection[str]
    ) -> None:
        self._kube = kube
        self._kind = kind
        self._post_event = post_event
        self._warning_reasons = frozenset(warning_reasons)

    def read(self, namespace: str, name: str) -> Manifest | None:
        """The object to reconcile; None when it is gone or being deleted (its children go with it)."""
        body = self._kube.get(API_VERSION, self._kind, name, namespace)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        return body

    def flush(self, run: Pass[Any, Any]) -> None:
        """Write the draft status if it changed, then post events for the conditions that changed
        and those the pass queued (an event repeated word for word is posted once)."""
        patch = status_patch(run.written, run.draft)
        if patch is None:
            return
        owner = run.owner
        if self._kube.patch_status(API_VERSION, self._kind, owner.name, owner.namespace, patch) is None:
            return
        before = run.written.get("conditions", [])
        run.written = copy.deepcopy(run.draft)
        events: list[tuple[str, str, str]] = []
        for condition in run.draft.get("conditions", []):
            old = find(before, condition["type"])
            if old is not None and (old["status"], old["reason"]) == (
                condition["status"],
                condition["reason"],
            ):
                continue
            kind = "Warning" if condition["reason"] in self._warning_reasons else "Normal"
            events.append((kind, condition["reason"], condition["message"]))
        events, run.events = events + run.events, []
        for kind, reason, message in dict.fromkeys(events):  # one cause set on several conditions: one event
            self._post_event(run.body, kind, reason, message)

    def parse(
        self, body: Manifest, now: datetime, failed_phase: str, read: Callable[[Manifest], T], note: str = ""
    ) -> T | None:
        """``read`` of the object (its status left out); a spec it rejects with a pydantic
        ValidationError or ``InvalidSpec`` is reported (``invalid_spec``, ``note`` appended to the
        message) and None returned, so the pass stops before touching any child."""
        try:
            return read({**body, "status": None})
        except ValidationError as error:
            problem = validation_problem(error)
        except InvalidSpec as error:
            problem = str(error)
        self.invalid_spec(body, now, failed_phase, f"{problem}. Fix the spec and apply it again.{note}")
        return None

    def invalid_spec(self, body: Manifest, now: datetime, phase: str, message: str) -> None:
        """Report a spec the operator cannot use: ``phase`` (Failed) and Failed=True/InvalidSpec."""
        meta = body["metadata"]
        written = copy.deepcopy(body.get("status") or {})
        draft = copy.deepcopy(written)
        draft["phase"] = phase
        draft["observedGeneration"] = meta.get("generation")
        draft["conditions"] = set_condition(
            draft.get("conditions", []),
            type_=c.COND_FAILED,
            status=True,
            reason=c.REASON_INVALID_SPEC,
            message=message,
            now=now,
            generation=meta.get("generation"),
        )
        patch = status_patch(written, draft)
        if patch and self._kube.patch_status(API_VERSION, self._kind, meta["name"], meta["namespace"], patch):
            self._post_event(body, "Warning", c.REASON_INVALID_SPEC, message)
