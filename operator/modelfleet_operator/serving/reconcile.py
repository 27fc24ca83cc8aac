"""The ModelDeployment controller: how the engine (``common.reconcile``) reads, observes and plans one.

Reading refuses a spec whose runtime config no engine launcher would accept (``InvalidSpec``, the
running replicas keep the previous spec); observe reads the Deployments, server pods and optional
integrations (KEDA, Gateway API, the custom metrics API) from the indexes; the decisions are
``serving.plan``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.modeldeployment import ModelDeployment, ModelDeploymentStatus

from modelfleet_operator.common.errors import InvalidSpec
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.indexes import Indexes, training_jobs_named
from modelfleet_operator.common.kinds import (
    AZURE_POD_MONITOR,
    BENCHMARK_SWEEP,
    CONFIG_MAP,
    DEPLOYMENT,
    HORIZONTAL_POD_AUTOSCALER,
    HTTP_ROUTE,
    HTTP_SCALED_OBJECT,
    MODEL_DEPLOYMENT,
    POD_DISRUPTION_BUDGET,
    POD_MONITOR,
    SCALED_OBJECT,
    SERVICE,
)
from modelfleet_operator.common.live import Live
from modelfleet_operator.common.plan import Plan
from modelfleet_operator.common.references import serving_references
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.serving import builders
from modelfleet_operator.serving import plan as planning
from modelfleet_operator.serving.builders import HttpAddOn, Integrations, Owner
from modelfleet_operator.serving.engines import HEALTH_PATHS, launch_problem
from modelfleet_operator.serving.policies.custom_metrics import API_SERVICE_NAMES, custom_metrics_api

KIND = "ModelDeployment"
KEPT_REPLICAS = " Running replicas keep the previous spec."
"""Said with an invalid spec: the pass stops before it touches the Deployments."""
KEDA_CRD = ("scaledobjects.keda.sh", SCALED_OBJECT.version)
GATEWAY_API_CRD = ("httproutes.gateway.networking.k8s.io", HTTP_ROUTE.version)
KEDA_HTTP_CRD = ("httpscaledobjects.http.keda.sh", HTTP_SCALED_OBJECT.version)
POD_MONITOR_CRD = ("podmonitors.monitoring.coreos.com", POD_MONITOR.version)
AZURE_POD_MONITOR_CRD = ("podmonitors.azmonitoring.coreos.com", AZURE_POD_MONITOR.version)
WARNING_REASONS = frozenset(
    {
        c.REASON_ENGINE_CRASHING,
        c.REASON_MODEL_DOWNLOAD_FAILED,
        c.REASON_UNSCHEDULABLE,
        c.REASON_INVALID_SPEC,
        c.REASON_AUTOSCALER_UNAVAILABLE,
        c.REASON_CUSTOM_METRICS_UNAVAILABLE,
        c.REASON_SERVICE_ACCOUNT_NOT_FOUND,
        c.REASON_REFERENCE_MISSING,
        c.REASON_TRAINING_FAILED,
        c.REASON_TRAINING_JOB_NOT_FOUND,
        c.REASON_ADAPTER_NOT_SUPPORTED,
        c.REASON_NOT_A_MODEL,
        c.REASON_CANARY_ROLLED_BACK,
    }
)


class ModelDeploymentController:
    kind = MODEL_DEPLOYMENT
    owner_label = c.LABEL_MODEL_DEPLOYMENT
    child_kinds = (
        CONFIG_MAP,
        SERVICE,
        DEPLOYMENT,
        POD_DISRUPTION_BUDGET,
        HORIZONTAL_POD_AUTOSCALER,
        SCALED_OBJECT,
        HTTP_SCALED_OBJECT,
        POD_MONITOR,
        AZURE_POD_MONITOR,
        HTTP_ROUTE,
        BENCHMARK_SWEEP,
    )
    status_model = ModelDeploymentStatus
    failed_phase = c.ModelDeploymentPhase.FAILED
    invalid_spec_note = KEPT_REPLICAS
    warning_reasons = WARNING_REASONS

    def __init__(self, config: OperatorConfig) -> None:
        self._config = config

    def read(self, body: dict[str, Any]) -> ModelDeployment:
        """The ModelDeployment, if every track's runtime config can launch (else ``InvalidSpec``)."""
        model_deployment = ModelDeployment.model_validate(body)
        owner, spec = Owner.of(model_deployment), model_deployment.spec
        # Tracks served from a TrainingJob are checked once resolved (ModelReady says what is wrong).
        for track in builders.tracks(spec, self._config.serving_images):
            prefix = "canary: " if track.name == c.TRACK_CANARY else ""
            problem = launch_problem(builders.runtime_config(owner, spec, track), prefix)
            if problem is not None:
                raise InvalidSpec(problem)
        return model_deployment

    def owner(self, resource: ModelDeployment) -> Owner:
        return Owner.of(resource)

    def _identity(self, resource: ModelDeployment) -> RuntimeIdentity:
        return RuntimeIdentity.of(self._config, resource.spec.service_account_name)

    def observe(self, resource: ModelDeployment, children: list[Live], indexes: Indexes) -> planning.Observed:
        owner = self.owner(resource)
        names = owner.names
        deployments = {
            track: child
            for track in (c.TRACK_STABLE, c.TRACK_CANARY)
            for child in children
            if child.manifest["kind"] == DEPLOYMENT.kind and child.name == names.deployment(track)
        }
        pods = [
            pod
            for pod in indexes.pods(self.owner_label, owner.namespace, owner.name)
            if (pod["metadata"].get("labels") or {}).get(c.LABEL_COMPONENT) == c.COMPONENT_SERVER
        ]
        account = self._identity(resource).service_account
        return planning.Observed(
            deployments=deployments,
            pods=pods,
            integrations=Integrations(
                keda=indexes.serves(*KEDA_CRD),
                gateway_api=indexes.serves(*GATEWAY_API_CRD),
                keda_http=indexes.serves(*KEDA_HTTP_CRD),
                pod_monitor=indexes.serves(*POD_MONITOR_CRD),
                azure_pod_monitor=indexes.serves(*AZURE_POD_MONITOR_CRD),
                custom_metrics=custom_metrics_api(
                    {name: indexes.api_service(name) for name in API_SERVICE_NAMES}
                ),
            ),
            runtime_account_exists=account is None
            or indexes.service_account_exists(owner.namespace, account),
            sweeps={
                child.name: child.manifest
                for child in children
                if child.manifest["kind"] == BENCHMARK_SWEEP.kind
            },
            references=indexes.look_up(serving_references(resource.spec), owner.namespace),
            training_jobs={
                job: indexes.training_job(owner.namespace, job)
                for job in training_jobs_named(resource.spec.to_wire())
            },
        )

    def plan(
        self,
        resource: ModelDeployment,
        status: ModelDeploymentStatus,
        observed: planning.Observed,
        now: datetime,
    ) -> Plan[ModelDeploymentStatus]:
        settings = planning.Settings(
            images=self._config.serving_images,
            health_paths=HEALTH_PATHS,
            prometheus_url=self._config.prometheus_url,
            add_on=HttpAddOn(self._config.keda_http_namespace),
            keda_authentication=self._config.keda_trigger_authentication,
            identity=self._identity(resource),
            prices=self._config.prices,
        )
        generation = resource.metadata.get("generation")
        return planning.plan(self.owner(resource), resource.spec, generation, status, observed, now, settings)
