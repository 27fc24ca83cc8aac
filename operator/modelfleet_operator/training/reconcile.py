"""The TrainingJob controller: how the engine (``common.reconcile``) reads, observes and plans one.

Observe reads the worker Job, its pods, Kueue's Workload of it and the progress ConfigMap from the
indexes; the decisions are ``training.plan``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.trainingjob import TrainingJob, TrainingJobStatus

from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.indexes import Indexes
from modelfleet_operator.common.kinds import (
    CONFIG_MAP,
    JOB,
    ROLE,
    ROLE_BINDING,
    SERVICE,
    SERVICE_ACCOUNT,
    TRAINING_JOB,
)
from modelfleet_operator.common.live import Live
from modelfleet_operator.common.plan import Plan
from modelfleet_operator.common.references import training_references
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.training import plan as planning
from modelfleet_operator.training.builders import Owner
from modelfleet_operator.training.policies.progress import read_progress

KIND = "TrainingJob"
KUEUE_CRD = "localqueues.kueue.x-k8s.io"
JOB_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
WARNING_REASONS = frozenset(
    {
        c.REASON_WORKER_FAILED,
        c.REASON_WORKER_EVICTED,
        c.REASON_STALLED,
        c.REASON_BACKOFF_LIMIT_EXCEEDED,
        c.REASON_SCHEDULING_TIMEOUT,
        c.REASON_GANG_REQUEUED,
        c.REASON_PREEMPTED,
        c.REASON_EVICTED_BY_KUEUE,
        c.REASON_WAITING_FOR_CAPACITY,
        c.REASON_INVALID_SPEC,
        c.REASON_CEILING_REACHED,
        c.REASON_POOL_CONFLICT,
        c.REASON_AZURE_THROTTLED,
        c.REASON_AZURE_ERROR,
        c.REASON_QUOTA_EXCEEDED,
        c.REASON_SKU_NOT_AVAILABLE,
        c.REASON_SERVICE_ACCOUNT_NOT_FOUND,
        c.REASON_REFERENCE_MISSING,
    }
)


class TrainingJobController:
    kind = TRAINING_JOB
    owner_label = c.LABEL_TRAINING_JOB
    child_kinds = (SERVICE_ACCOUNT, ROLE, ROLE_BINDING, CONFIG_MAP, SERVICE, JOB)
    status_model = TrainingJobStatus
    failed_phase = c.TrainingJobPhase.FAILED
    invalid_spec_note = ""
    warning_reasons = WARNING_REASONS

    def __init__(self, config: OperatorConfig) -> None:
        self._config = config

    def read(self, body: dict[str, Any]) -> TrainingJob:
        return TrainingJob.model_validate(body)

    def owner(self, resource: TrainingJob) -> Owner:
        return Owner.of(resource)

    def _identity(self, resource: TrainingJob) -> RuntimeIdentity:
        return RuntimeIdentity.of(self._config, resource.spec.service_account_name)

    def observe(self, resource: TrainingJob, children: list[Live], indexes: Indexes) -> planning.Observed:
        owner = self.owner(resource)
        names = owner.names
        by_key = {(child.manifest["kind"], child.name): child.manifest for child in children}
        job = by_key.get(("Job", names.job))
        pods = []
        workload = None
        if job is not None:
            uid = job["metadata"].get("uid")
            workload = indexes.workload(owner.namespace, uid) if uid else None
            pods = [
                pod
                for pod in indexes.pods(self.owner_label, owner.namespace, owner.name)
                if (pod["metadata"].get("labels") or {}).get(JOB_CONTROLLER_UID_LABEL) == uid
            ]
        account = self._identity(resource).service_account
        return planning.Observed(
            job=job,
            pods=pods,
            progress=read_progress(by_key.get(("ConfigMap", names.progress_config_map))),
            children=frozenset(by_key),
            runtime_account_exists=account is None
            or indexes.service_account_exists(owner.namespace, account),
            references=indexes.look_up(training_references(resource.spec), owner.namespace),
            kueue=indexes.serves(KUEUE_CRD),
            workload=workload,
        )

    def plan(
        self, resource: TrainingJob, status: TrainingJobStatus, observed: planning.Observed, now: datetime
    ) -> Plan[TrainingJobStatus]:
        settings = planning.Settings(
            image=self._config.training_image,
            identity=self._identity(resource),
            prices=self._config.prices,
            nodes=self._config.worker_nodes,
        )
        generation = resource.metadata.get("generation")
        return planning.plan(self.owner(resource), resource.spec, generation, status, observed, now, settings)
