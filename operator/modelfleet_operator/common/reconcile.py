"""One reconcile pass, the same for every kind: observe, plan, act, report.

- **observe**: the controller reads its object's children and pods from kopf's indexes (``Indexes``)
  and the object kopf holds; no API call.
- **plan**: the controller's pure ``plan`` turns (resource, stored status, observations, now) into a
  ``Plan``; a spec the API server accepted but the operator cannot use becomes phase ``Failed`` with
  ``Failed=True/InvalidSpec`` naming the field, and no child is touched. It is not final: once a fixed
  spec validates, the next pass clears that failure (``recover_from_invalid_spec``).
- **act**: the only place that writes children: server-side apply of the plan's children that are
  missing or have drifted (``common.live.drifted``), then a prune of owned children the plan neither
  applies nor keeps, then the capacity manager's ask or release (its answer becomes conditions).
- **report**: one status write, of the difference between the stored status and the plan's (Trainer's
  rule: nothing when nothing changed), then one event per condition whose status or reason changed and
  the plan's own events (JobSet's rule: events only after the status write succeeded), as Warning when
  the reason is one of the controller's warning reasons.

A plan that must not lose an action to a crash splits it over two passes: a gang restart is counted in
the status of one pass and the old gang pruned by the next (the plan asks for it with ``requeue_at``),
so a crash in between repeats the prune, never the count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from modelfleet_api import constants as c
from pydantic import BaseModel, ValidationError

from modelfleet_operator.capacity.plan import CapacityCondition
from modelfleet_operator.common.errors import InvalidSpec
from modelfleet_operator.common.indexes import Indexes
from modelfleet_operator.common.kinds import Kind, kind_of
from modelfleet_operator.common.live import Live, drifted
from modelfleet_operator.common.owner import Owner
from modelfleet_operator.common.plan import (
    CapacityAsk,
    CapacityRelease,
    Draft,
    Event,
    Plan,
    Status,
    to_apply,
    to_prune,
)
from modelfleet_operator.conditions import find, transitions
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.status import status_patch

if TYPE_CHECKING:  # the Azure SDK is imported only when the capacity manager is on
    from modelfleet_operator.capacity.manager import CapacityManager

logger = logging.getLogger(__name__)

PostEvent = Callable[[Manifest, str, str, str], None]
"""(object, type Normal/Warning, reason, message)."""
CAPACITY_RECHECK = timedelta(seconds=15)
"""How soon a pass asks the capacity manager again while pods wait for nodes (pool operations and
node joins are not watched)."""

ResourceT = TypeVar("ResourceT")
StatusT = TypeVar("StatusT", bound=Status)
ResourceT_contra = TypeVar("ResourceT_contra", contravariant=True)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def validation_problem(error: ValidationError) -> str:
    """``field.path: what is wrong`` of the first error pydantic found."""
    first = error.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


class Controller(Protocol[ResourceT, StatusT]):
    """What a kind's controller gives the engine: how to read, observe and plan one object."""

    @property
    def kind(self) -> Kind:
        """The kind it reconciles."""

    @property
    def owner_label(self) -> str:
        """The label its children carry with its name (``modelfleet.io/trainingjob``)."""

    @property
    def child_kinds(self) -> Sequence[Kind]:
        """Kinds of the children it applies and prunes."""

    @property
    def status_model(self) -> type[StatusT]:
        """The kind's status model."""

    @property
    def failed_phase(self) -> str:
        """The phase of a resource whose spec the operator cannot use."""

    @property
    def invalid_spec_note(self) -> str:
        """Appended to an InvalidSpec message (what happens to running workloads meanwhile)."""

    @property
    def warning_reasons(self) -> Collection[str]:
        """Condition reasons whose events are Warnings."""

    def read(self, body: Manifest) -> ResourceT:
        """The typed resource; raises ValidationError or InvalidSpec for a spec it cannot use."""

    def owner(self, resource: ResourceT) -> Owner:
        """The owner its children reference."""

    def observe(self, resource: ResourceT, children: list[Live], indexes: Indexes) -> Any:
        """What the plan needs to know besides the resource and its status (reads indexes only)."""

    def plan(self, resource: ResourceT, status: StatusT, observed: Any, now: datetime) -> Plan[StatusT]:
        """The pure decision of this pass."""


@dataclass(frozen=True)
class Outcome:
    written: dict[str, Any] | None
    """The status this pass wrote, as the API server stored it (None: no write)."""
    requeue_at: datetime | None


@dataclass
class Engine(Generic[ResourceT, StatusT]):
    """Runs passes of one controller against the API (``kube``) and the capacity manager."""

    controller: Controller[ResourceT, StatusT]
    kube: Kube
    post_event: PostEvent
    capacity: CapacityManager | None = None
    clock: Callable[[], datetime] = utcnow

    async def run(self, body: Manifest, stored: dict[str, Any] | None, indexes: Indexes) -> Outcome:
        """One pass over ``body`` (the object as kopf holds it), whose status is ``stored`` as far as
        this operator knows (its own latest write may not have come back through the watch yet)."""
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            return Outcome(None, None)
        now = self.clock()
        stored = dict(stored or {})
        status = self._status(stored, meta)
        respecified = status.observed_generation != meta.get("generation")
        before = list(status.conditions)
        phase_before = cast(Any, status).phase
        children: list[Live] = []
        try:
            resource = self.controller.read({**body, "status": None})
        except (ValidationError, InvalidSpec) as error:
            problem = validation_problem(error) if isinstance(error, ValidationError) else str(error)
            message = f"{problem}. Fix the spec and apply it again.{self.controller.invalid_spec_note}"
            plan = self._invalid_spec(status, meta.get("generation"), now, message)
            owner_uid = meta["uid"]
        else:
            recover_from_invalid_spec(status)
            owner = self.controller.owner(resource)
            owner_uid = owner.uid
            children = indexes.owned(
                self.controller.owner_label, owner.namespace, owner.name, self.controller.child_kinds
            )
            observed = self.controller.observe(resource, children, indexes)
            plan = self.controller.plan(resource, status, observed, now)
        requeue_at = plan.requeue_at
        if not plan.hold:
            await self._act(plan, children, owner_uid, meta["namespace"], reapply=respecified)
        asked = plan.capacity is not None and self.capacity is not None
        if asked and await self._ask_capacity(plan, owner_uid, meta.get("generation"), now):
            requeue_at = _earliest(requeue_at, now + CAPACITY_RECHECK)
        if plan.delete_owner:
            logger.info(
                "deleting %s %s/%s: ttlSecondsAfterFinished passed",
                self.controller.kind.kind,
                meta["namespace"],
                meta["name"],
            )
            await self.kube.delete(self.controller.kind, meta["name"], meta["namespace"])
            return Outcome(None, None)
        written = await self._report(body, stored, before, plan)
        phase = cast(Any, plan.status).phase
        if written is not None and phase != phase_before:
            kind, name = self.controller.kind.kind, f"{meta['namespace']}/{meta['name']}"
            logger.info("%s %s: phase %s -> %s", kind, name, phase_before, phase)
        return Outcome(written, requeue_at)

    def forget(self, uid: str) -> None:
        """The object's daemon ended (deleted, or the operator stops): release its capacity demand."""
        if self.capacity is not None:
            self.capacity.release(uid)

    def _status(self, stored: dict[str, Any], meta: Manifest) -> StatusT:
        try:
            model: Any = self.controller.status_model
            parsed: StatusT = model.model_validate(stored)
            return parsed
        except ValidationError as error:
            logger.warning(
                "the stored status of %s %s/%s does not validate (%s); starting from an empty one",
                self.controller.kind.kind,
                meta.get("namespace"),
                meta.get("name"),
                validation_problem(error),
            )
            return self.controller.status_model()

    def _invalid_spec(
        self, status: StatusT, generation: int | None, now: datetime, message: str
    ) -> Plan[StatusT]:
        draft = Draft(status, now, generation)
        cast(Any, status).phase = self.controller.failed_phase
        status.observed_generation = generation
        draft.condition(c.COND_FAILED, True, c.REASON_INVALID_SPEC, message)
        return Plan(status=status, hold=True)

    async def _act(
        self, plan: Plan[StatusT], children: list[Live], owner_uid: str, namespace: str, *, reapply: bool
    ) -> None:
        """Apply wave by wave (``Kind.wave``), each wave's children at once, then prune at once: a new
        TrainingJob's seven children take three round trips, not seven.

        ``reapply`` (the first pass after a spec change): every wanted child whose whole manifest may
        change is applied, drifted or not. Drift only sees what a live child lacks; a field the plan
        stopped wanting (an env var, a ConfigMap key, a label removed from the spec) is still there
        and matches, and only an apply, which drops the fields its manager no longer sets, removes
        it. Kinds compared by a few paths (a Job, whose pod template is immutable) are not forced."""

        def stale(wanted: Manifest, live: Live) -> bool:
            kind = kind_of(wanted)
            return (reapply and kind.compared is None) or drifted(kind, wanted, live.manifest)

        missing = to_apply(plan, children, stale)
        for wave in sorted({kind_of(manifest).wave for manifest in missing}):
            batch = [manifest for manifest in missing if kind_of(manifest).wave == wave]
            await _all(self.kube.apply(manifest) for manifest in batch)
        pruned = to_prune(plan, children, owner_uid)
        await _all(self.kube.delete(kind_of(child.manifest), child.name, namespace) for child in pruned)

    async def _ask_capacity(
        self, plan: Plan[StatusT], uid: str, generation: int | None, now: datetime
    ) -> bool:
        """Tell the capacity manager; True when pods still wait for nodes (ask again later)."""
        assert self.capacity is not None
        ask = plan.capacity
        if isinstance(ask, CapacityRelease):
            self.capacity.release(uid)
            return False
        assert isinstance(ask, CapacityAsk)
        # ensure() may call Azure (blocking, seconds): a worker thread, awaited, so the pass ends after it.
        answered = await asyncio.to_thread(
            self.capacity.ensure, uid, ask.placement, ask.nodes, scheduled=ask.scheduled
        )
        set_capacity_conditions(Draft(plan.status, now, generation), answered)
        return not ask.scheduled

    async def _report(
        self, body: Manifest, stored: dict[str, Any], before: Sequence[Any], plan: Plan[StatusT]
    ) -> dict[str, Any] | None:
        wire = cast(BaseModel, plan.status).model_dump(mode="json", by_alias=True, exclude_none=True)
        patch = status_patch(stored, wire)
        if patch is None:
            return None
        meta = body["metadata"]
        answer = await self.kube.patch_status(self.controller.kind, meta["name"], meta["namespace"], patch)
        if answer is None:
            return None
        for event in self._events(before, plan):
            self.post_event(body, event.type, event.reason, event.message)
        written: dict[str, Any] = answer.get("status") or {}
        return written

    def _events(self, before: Sequence[Any], plan: Plan[StatusT]) -> list[Event]:
        warnings = self.controller.warning_reasons
        changed = [
            Event(type="Warning" if x.reason in warnings else "Normal", reason=x.reason, message=x.message)
            for x in transitions(before, plan.status.conditions)
        ]
        return list(dict.fromkeys([*changed, *plan.events]))  # one cause set on several conditions: one event


def recover_from_invalid_spec(status: Status) -> bool:
    """After ``InvalidSpec``, a spec that validates again: clear that failure and the phase it set
    (back to the model's default, Pending). A resource that had finished (``completionTime``) keeps
    its phase. True when it recovered."""
    failed = find(status.conditions, c.COND_FAILED)
    if failed is None or failed.reason != c.REASON_INVALID_SPEC:
        return False
    if getattr(status, "completion_time", None) is not None:
        return False
    status.conditions = [x for x in status.conditions if x.type != c.COND_FAILED]
    model: Any = status
    model.phase = type(model).model_fields["phase"].default
    return True


def set_capacity_conditions(draft: Draft[Any], answered: Sequence[CapacityCondition]) -> None:
    """The capacity manager's conditions; one that only clears a condition is set only if present."""
    for cond in answered:
        if not cond.only_if_present or draft.find(cond.type) is not None:
            draft.condition(cond.type, cond.status, cond.reason, cond.message)


async def _all(calls: Iterable[Awaitable[Any]]) -> None:
    """Await ``calls`` together; the first failure is raised once every call has ended."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        raise failure


def _earliest(first: datetime | None, second: datetime) -> datetime:
    return second if first is None else min(first, second)
