"""kopf wiring shared by the controllers: the indexes, one daemon per object, and the watch handlers
that wake it.

**Passes.** One daemon per object runs its passes (``Engine.run``) one at a time, each in one of the
operator's ``workers`` slots (``metrics.measured_pass``), then sleeps until it is woken, until the
plan's next deadline (``requeue_at``: a timeout, a TTL), or until the long safety resync passes. Woken,
it waits ``SETTLE_SECONDS`` more, so the events that follow one another come into one pass; an event
of a pod that stops (``pod_stops``) cuts that wait short. Slots go first to the passes that make or
replace children (``pass_priority``: an object's first pass, its first after a spec change, one woken
by a pod that stopped), then to the others (``common.slots``). A pass reads its object and the
indexes when it gets its slot, so the wakes that came while it waited for one are news it already
sees: they are cleared then, and make no pass of their own.

**Wakes.** Watch events wake the daemon of the object they concern: events on the object itself when
its spec changed (a new ``generation``) or its status is not one this operator wrote (the echo of its
own status write, and kopf's finalizer patches, wake nothing); events on a child or pod, by the owner
label it carries; a Kueue Workload wakes the TrainingJob whose worker Job it belongs to; a
ServiceAccount created or deleted wakes the objects of its namespace (they may be waiting for it); a
KEDA, Gateway API or Kueue CRD that appears or goes wakes every object of the kinds that use it, and
so does an APIService of an aggregated group they use that appears, goes or changes its Available
condition; a Secret, PersistentVolumeClaim or PriorityClass created or deleted wakes the objects that
may name it (``ReferencesReady``); a ModelDeployment wakes the sweeps that name it; a
TrainingJob wakes the ModelDeployments that serve its output. All handlers are coroutines on kopf's
event loop (kopf runs plain functions in a thread pool, a hop per event, and ``asyncio.Event`` is not
thread-safe). The index functions and these wake handlers are ``light``
(``kopf_fixes.light_handlers``): kopf calls them with only ``body``, ``name``, ``namespace``, ``uid``,
``labels`` and ``type``, without its per-call work; a kind with no other handler (children, pods,
the kinds kept by name) skips kopf's per-object processing altogether (``kopf_fixes.light_kinds``).

**Deletion.** kopf signals a deleted object's daemon to stop (``stopped``) and, only after
``cancellation_backoff``, cancels it. A pass in flight is never cut short: the daemon waits for it even
when cancelled, and only then forgets the object (releasing its capacity demand), so no pass can add
back a demand or a child after the clean-up (issue 18, item 6).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import kopf
from modelfleet_api import constants as c

from modelfleet_operator import metrics
from modelfleet_operator.common import indexes as ix
from modelfleet_operator.common.kinds import (
    API_SERVICE,
    CUSTOM_RESOURCE_DEFINITION,
    KUEUE_WORKLOAD,
    MODEL_DEPLOYMENT,
    OBSERVED_KINDS,
    POD,
    REFERENCED_KINDS,
    SECRET,
    SERVICE_ACCOUNT,
    TRAINING_JOB,
    Kind,
)
from modelfleet_operator.common.live import project
from modelfleet_operator.common.reconcile import Engine, utcnow
from modelfleet_operator.common.slots import PassSlots, Priority
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kopf_fixes.daemon_finalizer import without_finalizer
from modelfleet_operator.kopf_fixes.light_handlers import light
from modelfleet_operator.kube import Manifest

logger = logging.getLogger(__name__)

OWNER_KINDS = {
    c.LABEL_TRAINING_JOB: "TrainingJob",
    c.LABEL_MODEL_DEPLOYMENT: "ModelDeployment",
    c.LABEL_BENCHMARK_SWEEP: "BenchmarkSweep",
}
"""The kind of owner each owner label names."""
PENDING_ECHOES = 8
"""Status writes remembered until the watch brings them back (a few passes in quick succession)."""
RESYNC_JITTER = 0.1
"""The safety resync of each object is spread by up to this share, so objects do not resync in step."""
CANCELLATION_BACKOFF_SECONDS = 30.0
"""How long kopf lets a deleted object's daemon finish its pass in flight before it cancels it."""
SETTLE_SECONDS = 1.0
"""How long a woken daemon waits for more events before its pass (``sleep_until_woken``): in a burst,
a new TrainingJob's children and four pods bring some twenty events within seconds."""

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name)."""


@dataclass
class ObjectState:
    """What a daemon knows of its object between passes."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    urgent: asyncio.Event = field(default_factory=asyncio.Event)
    """Set with ``wake`` by an event whose news may be gone after the settle time (a pod that stops)."""
    generation: int | None = None
    """``metadata.generation`` the latest pass planned from."""
    known: dict[str, Any] | None = None
    """The status as of the latest pass: stored, or written by it."""
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Statuses this operator wrote that the watch has not brought back yet (oldest first)."""
    uid: str | None = None
    """The object's UID: one deleted and created again under its name is another object."""
    gone: bool = False
    """The watch reported the object deleted: its daemon ends after the pass in flight."""

    def stored(self, body_status: dict[str, Any] | None) -> dict[str, Any] | None:
        """The status to plan from: the latest this operator wrote, else the one the watch brought."""
        return self.pending[-1] if self.pending else body_status

    def wrote(self, status: dict[str, Any]) -> None:
        self.pending = [*self.pending, status][-PENDING_ECHOES:]
        self.known = status

    def seen(self, generation: int | None, status: dict[str, Any] | None) -> bool:
        """A watch event of the object: whether it calls for a pass."""
        changed_spec = generation != self.generation
        if status in self.pending:
            del self.pending[: self.pending.index(status) + 1]  # the echo of a write: nothing new
            return changed_spec
        if status == self.known and not self.pending:
            return changed_spec
        self.pending = []  # a status this operator did not write: the watch's copy is the truth
        self.known = status
        return True


class Wakeups:
    """The state of every running daemon, by (kind, namespace, name)."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, ObjectState] = {}

    def register(self, key: ObjectKey, uid: str) -> ObjectState:
        """The state of the object ``uid`` under ``key``: new unless this object's daemon made it (an
        object deleted and created again under its name gets a state of its own)."""
        state = self._objects.get(key)
        if state is None or state.uid != uid:
            state = self._objects[key] = ObjectState(uid=uid)
        return state

    def drop(self, key: ObjectKey, state: ObjectState) -> None:
        """Forget ``state``, unless another object under the same name has one by now."""
        if self._objects.get(key) is state:
            del self._objects[key]

    def deleted(self, key: ObjectKey, uid: str) -> None:
        """The watch reported the object ``uid`` deleted: its daemon ends (after its pass in flight)."""
        state = self._objects.get(key)
        if state is not None and state.uid == uid:
            state.gone = True
            state.wake.set()

    def get(self, key: ObjectKey) -> ObjectState | None:
        return self._objects.get(key)

    def wake(self, key: ObjectKey, *, urgent: bool = False) -> None:
        found = self._objects.get(key)
        if found is not None:
            found.wake.set()
            if urgent:
                found.urgent.set()

    def wake_where(self, matches: Callable[[ObjectKey], bool]) -> None:
        for key, state in self._objects.items():
            if matches(key):
                state.wake.set()


def post_event(body: Manifest, type_: str, reason: str, message: str) -> None:
    """A Kubernetes Event on ``body`` (the engine's ``PostEvent``), posted by kopf's event queue."""
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


async def sleep_until_woken(
    wake: asyncio.Event,
    stopped: kopf.DaemonStopped,
    seconds: float,
    settle: float = 0.0,
    urgent: asyncio.Event | None = None,
) -> bool:
    """Sleep ``seconds``, or less when ``wake`` is set or the daemon is stopped; clears ``wake``.

    Woken, it sleeps ``settle`` seconds more (unless stopped, or ``urgent`` is or gets set), so the
    events that follow one another (a pod scheduled, then running, then its Job's counts) come into one
    pass, not a pass each: a controller's work queue does the same by holding a key that is already
    queued. ``urgent`` is cleared too; whether it was set is returned."""
    urgent = urgent or asyncio.Event()
    woken = wake.is_set()
    if seconds > 0 and not woken:
        woken = await _first(wake.wait(), stopped.wait(), timeout=seconds) and wake.is_set()
    if woken and settle > 0 and not stopped and not urgent.is_set():
        await _first(stopped.wait(), urgent.wait(), timeout=settle)
    was_urgent = urgent.is_set()
    wake.clear()
    urgent.clear()
    return was_urgent


def pass_priority(state: ObjectState, generation: int | None, urgent: bool) -> Priority:
    """``PROMPT`` for a pass that may make or replace children: the object's first (``state`` has
    planned no generation yet), its first since its spec changed, or one woken by a pod that stopped;
    ``ROUTINE`` for the passes that report what children and pods do."""
    if urgent or state.generation is None or generation != state.generation:
        return Priority.PROMPT
    return Priority.ROUTINE


async def _first(*awaitables: Awaitable[Any], timeout: float) -> bool:
    """Wait until the first of ``awaitables`` is done, at most ``timeout`` seconds; whether one was."""
    waiters = {asyncio.ensure_future(awaitable) for awaitable in awaitables}
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


async def finish(task: asyncio.Future[Any]) -> Any:
    """The result of ``task``; a cancellation of the caller waits for ``task`` to end, then goes on."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue
            except Exception:  # logged by the pass itself
                break
        raise


@dataclass
class Operator:
    """What the controllers share: their wake-ups, the worker slots and the indexes' ids."""

    config: OperatorConfig
    registry: kopf.OperatorRegistry
    wakeups: Wakeups = field(default_factory=Wakeups)
    workers: PassSlots = field(init=False)
    index_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.workers = PassSlots(self.config.workers)


def register_indexes(operator: Operator) -> None:
    """The indexes every controller reads, and the watch handlers that wake owners of their objects."""
    registry, wakeups = operator.registry, operator.wakeups
    managed = {c.LABEL_MANAGED_BY: c.MANAGED_BY}
    for kind in OBSERVED_KINDS:
        _index(operator, kind, kind.index_id, _by_owner(kind), labels=managed)
        if kind not in (MODEL_DEPLOYMENT, SERVICE_ACCOUNT):  # these two have handlers of their own
            wake = _wake_owners(wakeups, urgent=pod_stops if kind == POD else None)
            _on_event(registry, kind, f"{kind.key}-wake-owner", wake, labels=managed)

    _index(operator, SERVICE_ACCOUNT, ix.SERVICE_ACCOUNTS, _by_name(lambda body: True))
    _on_event(registry, SERVICE_ACCOUNT, "serviceaccounts-wake", _service_account_changed(wakeups))
    for kind in REFERENCED_KINDS:  # kept by name only: a Secret's data never enters an index
        if kind == SECRET and not operator.config.check_secrets:
            continue  # not indexed: Secret references are not checked (``Indexes.look_up``)
        _index(operator, kind, ix.REFERENCED[kind.kind], _by_name(lambda body: True))
        _on_event(registry, kind, f"{kind.plural}-wake", _reference_changed(wakeups))
    _index(
        operator,
        MODEL_DEPLOYMENT,
        ix.MODEL_DEPLOYMENTS,
        _by_name(lambda body: project(MODEL_DEPLOYMENT, body)),
    )
    _index(operator, TRAINING_JOB, ix.TRAINING_JOBS, _by_name(lambda body: project(TRAINING_JOB, body)))

    def by_training_job(
        name: str, namespace: str, body: kopf.Body, labels: Mapping[str, str]
    ) -> dict[Any, Any]:
        return {(namespace, job): name for job in ix.training_jobs_named(body.get("spec") or {})}

    _index(operator, MODEL_DEPLOYMENT, ix.DEPLOYMENTS_BY_TRAINING_JOB, by_training_job)

    async def workloads_by_job(body: kopf.Body, **_: Any) -> dict[Any, Any] | None:
        return ix.workload_keys(body) or None

    _index_fn(operator, KUEUE_WORKLOAD, ix.WORKLOADS_BY_JOB, workloads_by_job)

    async def workload_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        # A worker Job bears its TrainingJob's name (``training.names``); other Jobs' Workloads wake no one.
        for ref in (body.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == "Job" and ref.get("name"):
                wakeups.wake((TRAINING_JOB.kind, namespace or "", ref["name"]))

    _on_event(registry, KUEUE_WORKLOAD, "workloads-wake", workload_changed)

    async def crd_by_name(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        return {name: ix.crd_summary(body)}

    _index_fn(operator, CUSTOM_RESOURCE_DEFINITION, ix.CRDS, crd_by_name)

    async def crd_changed(name: str, **_: Any) -> None:
        users = INTEGRATION_USERS.get(name)
        if users:
            wakeups.wake_where(lambda key: key[0] in users)

    _on_event(registry, CUSTOM_RESOURCE_DEFINITION, "crds-wake", crd_changed)

    async def api_service_by_name(name: str, body: kopf.Body, **_: Any) -> dict[str, Any] | None:
        if (body.get("spec") or {}).get("group") not in API_SERVICE_USERS:
            return None
        return {name: ix.api_service_summary(body)}

    _index_fn(operator, API_SERVICE, ix.API_SERVICES, api_service_by_name)

    async def api_service_changed(body: kopf.Body, **_: Any) -> None:
        users = API_SERVICE_USERS.get((body.get("spec") or {}).get("group") or "")
        if users:
            wakeups.wake_where(lambda key: key[0] in users)

    _on_event(registry, API_SERVICE, "apiservices-wake", api_service_changed)


INTEGRATION_USERS: dict[str, frozenset[str]] = {
    "scaledobjects.keda.sh": frozenset({"ModelDeployment"}),
    "httpscaledobjects.http.keda.sh": frozenset({"ModelDeployment"}),
    "podmonitors.monitoring.coreos.com": frozenset({"ModelDeployment"}),
    "podmonitors.azmonitoring.coreos.com": frozenset({"ModelDeployment"}),
    "httproutes.gateway.networking.k8s.io": frozenset({"ModelDeployment"}),
    "localqueues.kueue.x-k8s.io": frozenset({"TrainingJob"}),
}
"""Optional integrations' CRDs, and the kinds whose plans depend on them."""
API_SERVICE_USERS: dict[str, frozenset[str]] = {
    # The HPA fallback's Pods metric is read through it (a custom-metrics adapter serves it).
    "custom.metrics.k8s.io": frozenset({"ModelDeployment"}),
}
"""Aggregated API groups whose APIServices are indexed, and the kinds whose plans depend on them."""


def _index(
    operator: Operator,
    kind: Kind,
    index_id: str,
    value_of: Callable[[str, str, kopf.Body, Mapping[str, str]], dict[Any, Any]],
    labels: dict[str, str] | None = None,
) -> None:
    async def index(
        name: str, namespace: str | None, body: kopf.Body, labels: Mapping[str, str], **_: Any
    ) -> Any:
        return value_of(name, namespace or "", body, labels) or None

    _index_fn(operator, kind, index_id, index, labels)


def _index_fn(
    operator: Operator,
    kind: Kind,
    index_id: str,
    function: Callable[..., Coroutine[Any, Any, Any]],
    labels: dict[str, str] | None = None,
) -> None:
    kopf.index(kind.group, kind.version, kind.plural, id=index_id, labels=labels, registry=operator.registry)(
        light(function)
    )
    operator.index_ids.add(index_id)


def _on_event(
    registry: kopf.OperatorRegistry,
    kind: Kind,
    handler_id: str,
    function: Callable[..., Coroutine[Any, Any, None]],
    labels: dict[str, str] | None = None,
) -> None:
    kopf.on.event(kind.group, kind.version, kind.plural, id=handler_id, labels=labels, registry=registry)(
        light(function)
    )


def _by_owner(kind: Kind) -> Callable[[str, str, kopf.Body, Mapping[str, str]], dict[Any, Any]]:
    def value_of(name: str, namespace: str, body: kopf.Body, labels: Mapping[str, str]) -> dict[Any, Any]:
        keys = ix.owner_keys(labels, namespace)
        if not keys:
            return {}
        live = project(kind, body)
        return dict.fromkeys(keys, live)

    return value_of


def _by_name(
    value: Callable[[kopf.Body], Any],
) -> Callable[[str, str, kopf.Body, Mapping[str, str]], dict[Any, Any]]:
    def value_of(name: str, namespace: str, body: kopf.Body, labels: Mapping[str, str]) -> dict[Any, Any]:
        return {(namespace, name): value(body)}

    return value_of


def pod_stops(type: str | None, body: Mapping[str, Any]) -> bool:
    """A pod deleted, being deleted, or ended: why it stopped (an eviction, a failure) is read from it,
    and it may be gone after the settle time, so its owner's pass runs at once."""
    deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
    ended = (body.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    return type == "DELETED" or deleting or ended


def _wake_owners(
    wakeups: Wakeups, urgent: Callable[[str | None, Mapping[str, Any]], bool] | None = None
) -> Callable[..., Coroutine[Any, Any, None]]:
    async def wake_owners(
        type: str | None, body: kopf.Body, labels: Mapping[str, str], namespace: str | None, **_: Any
    ) -> None:
        now = urgent is not None and urgent(type, body)
        for label, ns, owner in ix.owner_keys(labels, namespace):
            wakeups.wake((OWNER_KINDS[label], ns, owner), urgent=now)

    return wake_owners


def _service_account_changed(wakeups: Wakeups) -> Callable[..., Coroutine[Any, Any, None]]:
    async def service_account_changed(
        type: str | None, labels: Mapping[str, str], namespace: str | None, **_: Any
    ) -> None:
        if labels.get(c.LABEL_MANAGED_BY) == c.MANAGED_BY:
            for label, ns, owner in ix.owner_keys(labels, namespace):
                wakeups.wake((OWNER_KINDS[label], ns, owner))
        elif type in ("ADDED", "DELETED"):  # an object of the namespace may be waiting for it
            wakeups.wake_where(lambda key: key[1] == namespace)

    return service_account_changed


def _reference_changed(wakeups: Wakeups) -> Callable[..., Coroutine[Any, Any, None]]:
    """An object a spec may name (``common.references``) appeared or went: wake the objects of its
    namespace (every object, for a cluster-scoped one), which may be waiting for it. Changes of an
    existing one wake nothing: only existence counts."""

    async def reference_changed(type: str | None, namespace: str | None, **_: Any) -> None:
        if type in ("ADDED", "DELETED"):
            wakeups.wake_where(lambda key: namespace is None or key[1] == namespace)

    return reference_changed


def register_controller(
    operator: Operator,
    engine: Engine[Any, Any],
    *,
    also_wake: Callable[[kopf.Body, Mapping[str, str], str, Mapping[str, Any]], Iterable[ObjectKey]]
    | None = None,
) -> None:
    """The daemon of every object of the engine's kind and the handler of its own watch events.

    ``also_wake``: other objects an event of this kind's object concerns, from (body, labels,
    namespace, indexes); e.g. the sweeps that measure a ModelDeployment.
    """
    config, wakeups, registry = operator.config, operator.wakeups, operator.registry
    controller = engine.controller
    kind = controller.kind

    async def daemon(
        body: kopf.Body, name: str, namespace: str, uid: str, stopped: kopf.DaemonStopped, **kwargs: Any
    ) -> None:
        key = (kind.kind, namespace, name)
        indexes = ix.Indexes({k: v for k, v in kwargs.items() if k in operator.index_ids})
        state = wakeups.register(key, uid)
        urgent = False
        try:
            while not stopped and not state.gone:
                passing = one_pass(body, state, indexes, stopped, urgent)
                requeue_at = await finish(asyncio.ensure_future(passing))
                pause = _pause(requeue_at, config.resync_seconds)
                urgent = await sleep_until_woken(state.wake, stopped, pause, SETTLE_SECONDS, state.urgent)
        finally:
            wakeups.drop(key, state)
            engine.forget(uid)

    async def one_pass(
        body: kopf.Body, state: ObjectState, indexes: ix.Indexes, stopped: kopf.DaemonStopped, urgent: bool
    ) -> datetime | None:
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        priority = pass_priority(state, meta.get("generation"), urgent)

        async def run() -> datetime | None:
            if stopped or state.gone:
                return None
            # What woke the daemon while this pass waited for its slot is in what it reads now (the
            # body and the indexes, both updated before any wake): no pass of its own. No await comes
            # between these lines and the snapshot, so a later event wakes it again.
            state.wake.clear()
            state.urgent.clear()
            # kopf replaces the body it holds with each event's new one and never changes one in place,
            # so the top level's copy is a snapshot that stays as it was while the pass awaits.
            snapshot: Manifest = dict(body)
            state.generation = snapshot["metadata"].get("generation")
            stored = state.stored(snapshot.get("status"))
            state.known = stored
            outcome = await engine.run(snapshot, stored, indexes)
            if outcome.written is not None:
                state.wrote(outcome.written)
            return outcome.requeue_at

        try:
            return await metrics.measured_pass(kind.kind, operator.workers, priority, namespace, name, run)
        except Exception:  # a failed pass is retried; the daemon must outlive API hiccups
            logger.exception("reconcile of %s %s/%s failed", kind.kind, namespace, name)
            return utcnow() + timedelta(seconds=config.backoff_seconds)

    async def changed(
        type: str | None,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        uid: str,
        labels: Mapping[str, str],
        **kwargs: Any,
    ) -> None:
        status = dict(body.get("status") or {}) or None
        metrics.PHASES.observe(kind.kind, uid, (status or {}).get("phase"), deleted=type == "DELETED")
        key = (kind.kind, namespace or "", name)
        if type == "DELETED":
            wakeups.deleted(key, uid)
        state = wakeups.get(key)
        if state is not None and state.seen(body.get("metadata", {}).get("generation"), status):
            state.wake.set()
        if also_wake is not None:
            for other in also_wake(body, labels, namespace or "", kwargs):
                wakeups.wake(other)

    kopf.daemon(
        kind.group,
        kind.version,
        kind.plural,
        id=f"{kind.plural}-daemon",
        registry=registry,
        cancellation_backoff=CANCELLATION_BACKOFF_SECONDS,
        cancellation_timeout=CANCELLATION_BACKOFF_SECONDS,
    )(daemon)  # type: ignore[arg-type]
    without_finalizer(registry, f"{kind.plural}-daemon")
    on_event = kopf.on.event(
        kind.group, kind.version, kind.plural, id=f"{kind.plural}-changed", registry=registry
    )
    on_event(changed)


def _pause(requeue_at: datetime | None, resync_seconds: float) -> float:
    """Seconds until the next pass without events: the plan's deadline or the (jittered) resync."""
    resync = resync_seconds * (1 - RESYNC_JITTER * random.random())
    if requeue_at is None:
        return resync
    return max(0.0, min(resync, (requeue_at - utcnow()).total_seconds()))


def sweeps_naming(
    body: kopf.Body, labels: Mapping[str, str], namespace: str, indexes: Mapping[str, Any]
) -> list[ObjectKey]:
    """The sweeps that own or name the ModelDeployment ``body`` (``also_wake`` of ModelDeployments)."""
    owners = [(OWNER_KINDS[label], ns, owner) for label, ns, owner in ix.owner_keys(labels, namespace)]
    naming = indexes.get(ix.SWEEPS_BY_TARGET)
    name = body.get("metadata", {}).get("name", "")
    if naming is not None and (namespace, name) in naming:
        owners += [("BenchmarkSweep", namespace, sweep) for sweep in naming[namespace, name]]
    return owners


def deployments_serving(
    body: kopf.Body, labels: Mapping[str, str], namespace: str, indexes: Mapping[str, Any]
) -> list[ObjectKey]:
    """The ModelDeployments that serve the TrainingJob ``body``'s output (``also_wake`` of TrainingJobs)."""
    serving = indexes.get(ix.DEPLOYMENTS_BY_TRAINING_JOB)
    name = body.get("metadata", {}).get("name", "")
    if serving is None or (namespace, name) not in serving:
        return []
    return [("ModelDeployment", namespace, deployment) for deployment in serving[namespace, name]]
