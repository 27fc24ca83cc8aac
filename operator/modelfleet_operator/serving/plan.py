"""The ModelDeployment plan: the children it wants (``serving.desired``), the status from its
Deployments and server pods, and what to ask the capacity manager (pure).

Every pass applies the whole desired state; children that match it cost nothing, a drifted one is
applied again, and children the desired state no longer names (a removed canary, an HPA replaced by a
ScaledObject, the track Services without Gateway API) are pruned. Under an autoscaler the Deployment's
``replicas`` are the autoscaler's: the operator applies them only when it creates the Deployment, and
keeps applying the current count while it still owns the field (a ModelDeployment that gained an
autoscaler), until the autoscaler's first scale takes it over.

While the runtime ServiceAccount is missing the plan holds every child as it is: Deployments made now
could not create pods, and a rollout to it would replace serving replicas by none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.cost import PriceTable
from modelfleet_api.modeldeployment import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    StartupBreakdown,
    TrackStatus,
)
from modelfleet_api.serving import EngineType

from modelfleet_operator.common.cost import account, vm_share
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.live import Live
from modelfleet_operator.common.plan import RELEASE, CapacityAsk, CapacityRelease, Draft, Plan
from modelfleet_operator.common.references import NOTHING_NAMED, Lookup
from modelfleet_operator.conditions import is_true
from modelfleet_operator.serving import analysis, builders
from modelfleet_operator.serving.builders import HttpAddOn, Integrations, Owner
from modelfleet_operator.serving.desired import Desired, desired
from modelfleet_operator.serving.policies.capacity import nodes_for_replicas, pods_scheduled
from modelfleet_operator.serving.policies.lineage import TrackModel, ready_message, resolve
from modelfleet_operator.serving.policies.phase import TrackState, Verdict, assess
from modelfleet_operator.serving.policies.pods import find_problem, startup_breakdown
from modelfleet_operator.status import status_patch

Manifest = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What a ModelDeployment pass read from the indexes."""

    deployments: Mapping[str, Live] = field(default_factory=dict)
    """The Deployment of each track that exists."""
    pods: list[Manifest] = field(default_factory=list)
    """Server pods of every track."""
    integrations: Integrations = field(default_factory=lambda: Integrations(keda=False, gateway_api=False))
    runtime_account_exists: bool = True
    sweeps: Mapping[str, Manifest] = field(default_factory=dict)
    """The canary analysis' BenchmarkSweeps, by name."""
    references: Lookup = NOTHING_NAMED
    """The Secrets and claims the spec names, and which of them are missing."""
    training_jobs: Mapping[str, Manifest | None] = field(default_factory=dict)
    """Each TrainingJob a track serves from (``model.fromTrainingJob``), as indexed (None: absent)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    images: Mapping[EngineType, str]
    """The default serving image of each engine."""
    health_paths: Mapping[EngineType, str]
    prometheus_url: str
    identity: RuntimeIdentity
    add_on: HttpAddOn = builders.DEFAULT_HTTP_ADD_ON
    keda_authentication: str | None = None
    """The ClusterTriggerAuthentication of the prometheus triggers, if any."""
    """Where the KEDA HTTP add-on runs, when the cluster has it."""
    prices: PriceTable | None = None
    """The operator's price table (``status.cost``)."""


def track_state(name: str, deployment: Live | None) -> TrackState:
    if deployment is None or deployment.deleting:
        return TrackState(name=name, exists=False, desired=0, ready=0, updated=0)
    status = deployment.manifest.get("status") or {}
    return TrackState(
        name=name,
        exists=True,
        desired=int((deployment.manifest.get("spec") or {}).get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
    )


def _resolve(
    owner: Owner, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, observed: Observed
) -> tuple[dict[str, TrackModel], dict[str, Verdict]]:
    """Each track's model (``policies.lineage``), or why it waits."""
    served_name = builders.served_model_name(owner, spec)
    recorded = {
        c.TRACK_STABLE: status.model,
        c.TRACK_CANARY: status.canary.model if status.canary is not None else None,
    }
    models: dict[str, TrackModel] = {}
    waiting: dict[str, Verdict] = {}
    for track, source in builders.track_sources(spec).items():
        job = observed.training_jobs.get(source.from_training_job.name) if source.from_training_job else None
        found = resolve(
            source, job, recorded[track], engine=builders.track_engine(spec, track), served_name=served_name
        )
        if isinstance(found, Verdict):
            waiting[track] = found
        else:
            models[track] = found
    return models, waiting


def _model_ready(
    draft: Draft[ModelDeploymentStatus],
    spec: ModelDeploymentSpec,
    models: dict[str, TrackModel],
    waiting: dict[str, Verdict],
    observed: Observed,
) -> None:
    """ModelReady, for a deployment that serves a TrainingJob's output (dropped otherwise)."""
    sources = builders.track_sources(spec)
    if not any(source.from_training_job for source in sources.values()):
        draft.drop_condition(c.COND_MODEL_READY)
        return
    if waiting:
        first = next(iter(waiting.values()))
        message = " ".join(f"{track}: {verdict.message}" for track, verdict in waiting.items())
        if c.TRACK_STABLE not in waiting:
            message += " The stable track serves meanwhile."
        draft.condition(c.COND_MODEL_READY, False, first.reason, message)
        return
    parts = []
    for track, model in models.items():
        source = sources[track]
        job = observed.training_jobs.get(source.from_training_job.name) if source.from_training_job else None
        parts.append(ready_message(track, model, job))
    draft.condition(c.COND_MODEL_READY, True, c.REASON_MODEL_RESOLVED, " ".join(parts))


def _canary_ready(observed: Observed) -> bool:
    canary = track_state(c.TRACK_CANARY, observed.deployments.get(c.TRACK_CANARY))
    return canary.exists and canary.desired > 0 and canary.ready >= canary.desired


def _analysis(
    draft: Draft[ModelDeploymentStatus],
    owner: Owner,
    spec: ModelDeploymentSpec,
    observed: Observed,
    settings: Settings,
    models: dict[str, TrackModel],
) -> analysis.Outcome | None:
    """The canary analysis step, while a canary with ``analysis`` runs (else its status is dropped)."""
    canary = next(
        (t for t in builders.tracks(spec, settings.images, models) if t.name == c.TRACK_CANARY), None
    )
    if spec.canary is None or spec.canary.analysis is None or canary is None:
        draft.drop_condition(c.COND_CANARY_ANALYSIS)
        draft.status.canary_analysis = None
        return None
    print_ = analysis.fingerprint(owner, spec, canary, spec.canary.analysis)
    ready = _canary_ready(observed)
    outcome = analysis.analyze(
        draft,
        owner,
        spec.canary.analysis,
        draft.status.canary_analysis,
        print_,
        canary_ready=ready,
        sweeps=observed.sweeps,
    )
    draft.status.canary_analysis = outcome.status
    return outcome


def _desired(
    owner: Owner,
    spec: ModelDeploymentSpec,
    observed: Observed,
    settings: Settings,
    models: dict[str, TrackModel],
    analyzed: analysis.Outcome | None = None,
) -> Desired:
    stable = observed.deployments.get(c.TRACK_STABLE)
    new = stable is None or stable.deleting
    owns_replicas = stable is not None and "spec.replicas" in stable.operator_fields
    live_replicas = (stable.manifest.get("spec") or {}).get("replicas") if stable is not None else None
    return desired(
        owner,
        spec,
        images=settings.images,
        health_paths=settings.health_paths,
        integrations=observed.integrations,
        prometheus_url=settings.prometheus_url,
        add_on=settings.add_on,
        keda_authentication=settings.keda_authentication,
        canary_ready=_canary_ready(observed),
        identity=settings.identity,
        autoscaled_replicas=live_replicas if owns_replicas else None,
        new_deployment=new,
        models=models,
        canary_weight=analyzed.weight if analyzed is not None else None,
        canary_replicas=analyzed.canary_replicas if analyzed is not None else None,
        track_services=analyzed is not None,
    )


def _verdict(draft: Draft[ModelDeploymentStatus], type_: str, verdict: Verdict | None) -> None:
    if verdict is None:
        draft.drop_condition(type_)
    else:
        draft.condition(type_, verdict.status, verdict.reason, verdict.message)


def _report(
    draft: Draft[ModelDeploymentStatus],
    owner: Owner,
    spec: ModelDeploymentSpec,
    wanted: Desired,
    observed: Observed,
    models: dict[str, TrackModel],
    canary_weight: int | None,
) -> list[TrackState]:
    """Phase, conditions and replica counts from the Deployments and server pods."""
    status = draft.status
    states = [track_state(track.name, observed.deployments.get(track.name)) for track in wanted.tracks]
    verdict = assess(states, find_problem(observed.pods), canary_weight=canary_weight, at_zero=wanted.at_zero)
    status.phase = verdict.phase
    _verdict(draft, c.COND_AVAILABLE, verdict.available)
    _verdict(draft, c.COND_PROGRESSING, verdict.progressing)
    _verdict(draft, c.COND_CANARY_READY, verdict.canary)
    _verdict(draft, c.COND_AUTOSCALING, wanted.autoscaling)
    _verdict(draft, c.COND_ROUTED, wanted.routed)
    stable = states[0]
    if status.stable.desired_replicas != stable.desired and status.observed_generation is not None:
        status.last_scale_time = draft.now
    status.model = models[c.TRACK_STABLE].served
    status.stable = TrackStatus(ready_replicas=stable.ready, desired_replicas=stable.desired)
    status.canary = (
        TrackStatus(
            ready_replicas=states[1].ready,
            desired_replicas=states[1].desired,
            model=models[c.TRACK_CANARY].served,
        )
        if len(states) > 1
        else None
    )
    status.ready = f"{sum(s.ready for s in states)}/{sum(s.desired for s in states)}"
    status.endpoint = wanted.endpoint
    status.interceptor = wanted.interceptor
    status.served_model = builders.served_model_name(owner, spec)
    status.engine = spec.engine.type.value
    # With no live replica (scaled to zero, all deleted) the last one's breakdown stays: a cold start
    # is what a scale-to-zero deployment's owner wants to read, and it ends at zero.
    startup = startup_breakdown(observed.pods)
    if startup is not None:
        status.startup = StartupBreakdown.model_validate(startup)
    return states


def _report_held(draft: Draft[ModelDeploymentStatus]) -> None:
    """The current spec waits for an object it names or the runtime ServiceAccount: Pending when
    nothing was deployed yet, else Degraded while replicas of the previous spec keep serving;
    Progressing (and Available, when no replica serves) say why, as the waiting condition does."""
    waiting = next(
        found
        for type_ in (c.COND_REFERENCES_READY, c.COND_SERVICE_ACCOUNT_READY)
        if (found := draft.find(type_)) is not None and found.status == c.CONDITION_FALSE
    )
    reason, message = waiting.reason, waiting.message
    draft.condition(c.COND_PROGRESSING, False, reason, message)
    if not is_true(draft.status.conditions, c.COND_AVAILABLE):
        draft.condition(c.COND_AVAILABLE, False, reason, message)
    if draft.status.phase is not c.ModelDeploymentPhase.PENDING:
        draft.status.phase = c.ModelDeploymentPhase.DEGRADED


def _capacity(
    spec: ModelDeploymentSpec, states: list[TrackState], pods: list[Manifest]
) -> CapacityAsk | CapacityRelease:
    """The nodes of every desired replica (stable and canary share the placement) while any is desired;
    none when scaled to zero."""
    desired_replicas = sum(state.desired for state in states)
    if desired_replicas == 0:
        return RELEASE
    nodes = nodes_for_replicas(spec.resources, desired_replicas)
    return CapacityAsk(
        placement=spec.resources, nodes=nodes, scheduled=pods_scheduled(pods, desired_replicas)
    )


def plan(
    owner: Owner,
    spec: ModelDeploymentSpec,
    generation: int | None,
    status: ModelDeploymentStatus,
    observed: Observed,
    now: datetime,
    settings: Settings,
) -> Plan[ModelDeploymentStatus]:
    stored = status.to_wire()
    draft = Draft(status, now, generation)
    models, waiting = _resolve(owner, spec, status, observed)
    _model_ready(draft, spec, models, waiting, observed)
    if c.TRACK_STABLE in waiting:
        return _wait_for_model(draft, observed, generation)
    analyzed = _analysis(draft, owner, spec, observed, settings, models)
    wanted = _desired(owner, spec, observed, settings, models, analyzed)
    references = draft.references_ready(observed.references, owner.namespace)
    exists = observed.runtime_account_exists
    account_ready = draft.service_account_ready(settings.identity, exists, owner.namespace)
    held = not (references and account_ready)
    weight = analyzed.weight if analyzed is not None else (spec.canary.weight if spec.canary else None)
    states = _report(draft, owner, spec, wanted, observed, models, weight)
    status.observed_generation = generation
    if held:
        _report_held(draft)
    scheduled = sum(1 for pod in observed.pods if (pod.get("spec") or {}).get("nodeName"))
    status.cost = account(
        status.cost,
        vms_now=vm_share(spec.resources, scheduled, spec.resources.gpus_per_replica),
        now=now,
        table=settings.prices,
        placement=spec.resources,
        writing=status_patch(stored, status.to_wire()) is not None,
    )
    sweeps = analyzed.sweeps if analyzed is not None else []
    return Plan(
        status=status,
        apply=() if held else (*wanted.children, *sweeps),
        keep=analyzed.keep if analyzed is not None else frozenset(),
        hold=held,
        events=tuple(draft.events),
        requeue_at=analyzed.requeue_at if analyzed is not None else None,
        capacity=_capacity(spec, states, observed.pods),
    )


def _wait_for_model(
    draft: Draft[ModelDeploymentStatus], observed: Observed, generation: int | None
) -> Plan[ModelDeploymentStatus]:
    """The stable track's TrainingJob has not Succeeded: nothing is deployed for this spec. Pending when
    nothing runs; replicas of a previous spec keep serving (Degraded) until the model can be served."""
    status = draft.status
    status.observed_generation = generation
    waiting = draft.find(c.COND_MODEL_READY)
    assert waiting is not None
    draft.condition(c.COND_PROGRESSING, False, waiting.reason, waiting.message)
    running = any(not d.deleting for d in observed.deployments.values())
    if not running:
        status.phase = c.ModelDeploymentPhase.PENDING
        draft.condition(c.COND_AVAILABLE, False, waiting.reason, waiting.message)
    elif status.phase is not c.ModelDeploymentPhase.PENDING:
        status.phase = c.ModelDeploymentPhase.DEGRADED
    return Plan(status=status, hold=True, capacity=None if running else RELEASE)
