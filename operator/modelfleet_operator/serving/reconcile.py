"""The ModelDeployment reconcile: validate, detect integrations, observe, apply the plan, report.

Ordered steps like the TrainingJob's. Children are applied only when the plan changed since the last
pass for this object (or a Deployment it needs is missing), so an idle operator makes only the reads
of one observation per resync. Applying is create-if-absent, then a merge patch when the child's
spec-hash annotation differs; children of the plan's kinds that the plan no longer names (a removed
canary, an HPA replaced by a ScaledObject) are deleted. Status is written only when it changed, and
events follow a successful status write.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.modeldeployment import ModelDeployment, ModelDeploymentSpec

from modelfleet_operator.capacity.manager import CapacityManager
from modelfleet_operator.common import reconcile as common
from modelfleet_operator.common.errors import InvalidSpec
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.owner import selector
from modelfleet_operator.common.reconcile import PostEvent
from modelfleet_operator.conditions import is_true, rfc3339
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.serving import builders
from modelfleet_operator.serving.builders import Integrations, Owner
from modelfleet_operator.serving.engines import HEALTH_PATHS, launch_problem
from modelfleet_operator.serving.plan import Plan, plan
from modelfleet_operator.serving.policies.capacity import nodes_for_replicas, pods_scheduled
from modelfleet_operator.serving.policies.phase import TrackState, Verdict, assess
from modelfleet_operator.serving.policies.pods import find_problem, startup_breakdown

logger = logging.getLogger(__name__)

KIND = "ModelDeployment"
KEPT_REPLICAS = " Running replicas keep the previous spec."
"""Said with an invalid spec: the pass stops before it touches the Deployments."""
KEDA = ("keda.sh/v1alpha1", "ScaledObject", "scaledobjects.keda.sh")
HTTP_ROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes.gateway.networking.k8s.io")
CORE_CHILD_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
)
WARNING_REASONS = frozenset(
    {
        c.REASON_ENGINE_CRASHING,
        c.REASON_MODEL_DOWNLOAD_FAILED,
        c.REASON_UNSCHEDULABLE,
        c.REASON_INVALID_SPEC,
        c.REASON_AUTOSCALER_UNAVAILABLE,
        c.REASON_SERVICE_ACCOUNT_NOT_FOUND,
    }
)


def crd_serves(crd: Manifest | None, version: str) -> bool:
    """Whether a CustomResourceDefinition is Established and serves ``version``."""
    if crd is None or crd["metadata"].get("deletionTimestamp"):
        return False
    established = any(
        cond.get("type") == "Established" and cond.get("status") == c.CONDITION_TRUE
        for cond in (crd.get("status") or {}).get("conditions") or []
    )
    return established and any(v.get("name") == version and v.get("served") for v in crd["spec"]["versions"])


@dataclass
class Pass(common.Pass[Owner, ModelDeploymentSpec]):
    """One reconcile pass over one ModelDeployment: what was read and the status being drafted."""

    def verdict(self, type_: str, verdict: Verdict) -> None:
        self.condition(type_, verdict.status, verdict.reason, verdict.message)


class ModelDeploymentReconciler:
    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        post_event: PostEvent,
        clock: Callable[[], datetime] = common.utcnow,
        capacity: CapacityManager | None = None,
    ) -> None:
        self._kube = kube
        self._config = config
        self._status = common.StatusWriter(kube, KIND, post_event, WARNING_REASONS)
        self._clock = clock
        self._capacity = capacity
        self._applied: dict[str, str] = {}
        """ModelDeployment uid -> hash of the plan whose children were last applied."""
        self._integrations: tuple[datetime, Integrations] | None = None

    def forget(self, uid: str) -> None:
        self._applied.pop(uid, None)
        if self._capacity is not None:
            self._capacity.release(uid)

    # ---- entry point ------------------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> None:
        body = self._status.read(namespace, name)
        if body is None:
            return
        now = self._clock()
        model_deployment = self._status.parse(
            body, now, c.ModelDeploymentPhase.FAILED.value, self._read, KEPT_REPLICAS
        )
        if model_deployment is None:
            return
        run = Pass.start(body, Owner.of(model_deployment), model_deployment.spec, now)
        run.draft["observedGeneration"] = run.generation
        run.recover_from_invalid_spec()
        integrations = self._detect(now)
        deployments = self._observe_deployments(run)
        wanted = self._plan(run, integrations, canary_ready=_canary_ready(deployments))
        applied = self._apply(run, wanted, integrations, deployments)
        pods = self._report(run, wanted, deployments)
        if not applied:
            self._report_held(run)
        self._ensure_capacity(run, pods)
        self._status.flush(run)

    # ---- steps -------------------------------------------------------------------------------------
    def _read(self, body: Manifest) -> ModelDeployment:
        """The ModelDeployment, if every track's runtime config can launch (else ``InvalidSpec``)."""
        model_deployment = ModelDeployment.model_validate(body)
        owner, spec = Owner.of(model_deployment), model_deployment.spec
        for track in builders.tracks(spec, self._config.serving_image):
            prefix = "canary: " if track.name == c.TRACK_CANARY else ""
            problem = launch_problem(builders.runtime_config(owner, spec, track), prefix)
            if problem is not None:
                raise InvalidSpec(problem)
        return model_deployment

    def _detect(self, now: datetime) -> Integrations:
        """KEDA and Gateway API, read from their CRDs; cached for one resync interval for all objects."""
        if self._integrations is not None:
            seen_at, found = self._integrations
            if (now - seen_at).total_seconds() < self._config.resync_seconds:
                return found

        def served(api_version: str, crd_name: str) -> bool:
            crd = self._kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd_name)
            return crd_serves(crd, api_version.split("/")[1])

        found = Integrations(keda=served(KEDA[0], KEDA[2]), gateway_api=served(HTTP_ROUTE[0], HTTP_ROUTE[2]))
        self._integrations = (now, found)
        return found

    def _observe_deployments(self, run: Pass) -> dict[str, Manifest | None]:
        names = run.owner.names
        tracks = [c.TRACK_STABLE] + ([c.TRACK_CANARY] if run.spec.canary is not None else [])
        return {
            track: self._kube.get("apps/v1", "Deployment", names.deployment(track), run.owner.namespace)
            for track in tracks
        }

    def _plan(self, run: Pass, integrations: Integrations, *, canary_ready: bool) -> Plan:
        return plan(
            run.owner,
            run.spec,
            image=self._config.serving_image,
            health_paths=HEALTH_PATHS,
            integrations=integrations,
            prometheus_url=self._config.prometheus_url,
            canary_ready=canary_ready,
            identity=self._identity(run),
        )

    def _apply(
        self,
        run: Pass,
        wanted: Plan,
        integrations: Integrations,
        deployments: dict[str, Manifest | None],
    ) -> bool:
        """Apply the plan's children when it changed or a Deployment is missing. False: held back,
        every child left as it is, because the runtime ServiceAccount is missing (Deployments made now
        could not create pods, and a rollout to it would replace serving replicas by none)."""
        key = builders.spec_hash(
            [(m["kind"], m["metadata"]["name"], m["metadata"]["annotations"]) for m in wanted.children]
        )
        missing = any(d is None or d["metadata"].get("deletionTimestamp") for d in deployments.values())
        if self._applied.get(run.owner.uid) == key and not missing:
            return True
        if not run.service_account_ready(self._kube, self._identity(run)):
            return False
        autoscaled = {t.name for t in wanted.tracks if t.autoscaled}
        for manifest in wanted.children:
            track = manifest["metadata"]["labels"].get(c.LABEL_TRACK)
            applied = self._apply_one(manifest, keep_replicas=track in autoscaled)
            if manifest["kind"] == "Deployment":
                deployments[track] = applied
        self._prune(run, wanted, integrations)
        self._applied[run.owner.uid] = key
        return True

    def _apply_one(self, manifest: Manifest, *, keep_replicas: bool) -> Manifest:
        """Create, or patch when the stored child was built from something else. Under an autoscaler the
        Deployment's replicas belong to the autoscaler and are left as they are."""
        existing, created = self._kube.create_if_absent(manifest)
        stored_hash = (existing["metadata"].get("annotations") or {}).get(c.ANNOTATION_SPEC_HASH)
        wanted_hash = manifest["metadata"]["annotations"][c.ANNOTATION_SPEC_HASH]
        if created or stored_hash == wanted_hash:
            return existing
        meta = manifest["metadata"]
        patch: dict[str, Any] = {"metadata": {"labels": meta["labels"], "annotations": meta["annotations"]}}
        for field in ("spec", "data"):
            if field in manifest:
                patch[field] = copy.deepcopy(manifest[field])
        if keep_replicas and manifest["kind"] == "Deployment":
            patch["spec"].pop("replicas", None)
        logger.info("updating %s %s/%s", manifest["kind"], meta["namespace"], meta["name"])
        return self._kube.patch(
            manifest["apiVersion"], manifest["kind"], meta["name"], meta["namespace"], patch
        )

    def _prune(self, run: Pass, wanted: Plan, integrations: Integrations) -> None:
        """Delete this object's children of the plan's kinds that the plan does not name."""
        keep = {(m["kind"], m["metadata"]["name"]) for m in wanted.children}
        kinds = list(CORE_CHILD_KINDS)
        if integrations.keda:
            kinds.append(KEDA[:2])
        if integrations.gateway_api:
            kinds.append(HTTP_ROUTE[:2])
        selector = builders.children_selector(run.owner)
        for api_version, kind in kinds:
            for child in self._kube.list(api_version, kind, run.owner.namespace, label_selector=selector):
                meta = child["metadata"]
                owned = any(ref.get("uid") == run.owner.uid for ref in meta.get("ownerReferences") or [])
                if owned and (kind, meta["name"]) not in keep and not meta.get("deletionTimestamp"):
                    self._kube.delete(api_version, kind, meta["name"], run.owner.namespace)

    def _report(self, run: Pass, wanted: Plan, deployments: dict[str, Manifest | None]) -> list[Manifest]:
        """Phase, conditions and replica counts from the Deployments and server pods (returned)."""
        states = [_track_state(track.name, deployments.get(track.name)) for track in wanted.tracks]
        pods = self._kube.list(
            "v1", "Pod", run.owner.namespace, label_selector=selector(builders.server_selector(run.owner))
        )
        verdict = assess(
            states,
            find_problem(pods),
            canary_weight=run.spec.canary.weight if run.spec.canary is not None else None,
        )
        run.draft["phase"] = verdict.phase.value
        run.verdict(c.COND_AVAILABLE, verdict.available)
        run.verdict(c.COND_PROGRESSING, verdict.progressing)
        for type_, extra in ((c.COND_CANARY_READY, verdict.canary), (c.COND_AUTOSCALING, wanted.autoscaling)):
            if extra is None:
                run.drop_condition(type_)
            else:
                run.verdict(type_, extra)
        run.verdict(c.COND_ROUTED, wanted.routed)
        stable = states[0]
        previous = (run.written.get("stable") or {}).get("desiredReplicas")
        if previous is not None and previous != stable.desired:
            run.draft["lastScaleTime"] = rfc3339(run.now)
        run.draft["stable"] = {"readyReplicas": stable.ready, "desiredReplicas": stable.desired}
        if len(states) > 1:
            run.draft["canary"] = {"readyReplicas": states[1].ready, "desiredReplicas": states[1].desired}
        else:
            run.draft.pop("canary", None)
        run.draft["ready"] = f"{sum(s.ready for s in states)}/{sum(s.desired for s in states)}"
        run.draft["endpoint"] = wanted.endpoint
        run.draft["servedModel"] = builders.served_model_name(run.owner, run.spec)
        run.draft["engine"] = run.spec.engine.type.value
        startup = startup_breakdown(pods)
        if startup is None:
            run.draft.pop("startup", None)
        else:
            run.draft["startup"] = startup
        return pods

    def _report_held(self, run: Pass) -> None:
        """The current spec waits for the runtime ServiceAccount: Pending when nothing was deployed yet,
        else Degraded while replicas of the previous spec keep serving; Progressing (and Available, when
        no replica serves) say why."""
        message = self._identity(run).missing_message(run.owner.namespace)
        reason = c.REASON_SERVICE_ACCOUNT_NOT_FOUND
        run.condition(c.COND_PROGRESSING, False, reason, message)
        if not is_true(run.draft.get("conditions", []), c.COND_AVAILABLE):
            run.condition(c.COND_AVAILABLE, False, reason, message)
        if run.draft["phase"] != c.ModelDeploymentPhase.PENDING.value:
            run.draft["phase"] = c.ModelDeploymentPhase.DEGRADED.value

    def _ensure_capacity(self, run: Pass, pods: list[Manifest]) -> None:
        """With the capacity manager on: ask for a pool that fits every replica and report what it did.

        As for TrainingJobs: the nodes of all desired replicas (the Deployments' replicas, stable and
        canary share the placement) are asked for while any is desired, and released when none is
        (scaled to zero) or the ModelDeployment is gone (``forget``)."""
        if self._capacity is None:
            return
        desired = sum(
            int((run.draft.get(track) or {}).get("desiredReplicas", 0))
            for track in (c.TRACK_STABLE, c.TRACK_CANARY)
        )
        if desired == 0:
            self._capacity.release(run.owner.uid)
            return
        resources = run.spec.resources
        nodes = nodes_for_replicas(resources, desired)
        run.ask_capacity(self._capacity, resources, nodes, scheduled=pods_scheduled(pods, desired))

    def _identity(self, run: Pass) -> RuntimeIdentity:
        return RuntimeIdentity.of(self._config, run.spec.service_account_name)


def _track_state(name: str, deployment: Manifest | None) -> TrackState:
    if deployment is None or deployment["metadata"].get("deletionTimestamp"):
        return TrackState(name=name, exists=False, desired=0, ready=0, updated=0)
    status = deployment.get("status") or {}
    return TrackState(
        name=name,
        exists=True,
        desired=int(deployment["spec"].get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
    )


def _canary_ready(deployments: dict[str, Manifest | None]) -> bool:
    state = _track_state(c.TRACK_CANARY, deployments.get(c.TRACK_CANARY))
    return state.exists and state.desired > 0 and state.ready >= state.desired
