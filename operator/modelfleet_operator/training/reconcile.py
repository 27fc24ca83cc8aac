"""The TrainingJob reconcile: observe, decide with the policies, act, and report.

``reconcile`` runs a short list of ensure-steps in order (KAITO's shape); a step that acted or
must wait returns True and the rest are skipped until the next pass. Status is drafted on a copy
and written only when it differs from what was read; when an action must not be lost (a restart
is counted before the old gang is deleted), the draft is written first, so a crash between the two
calls is repaired by the next pass instead of skipping the count. Events for condition changes are
posted only after the status write succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from modelfleet_api import API_VERSION
from modelfleet_api import constants as c
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJob, TrainingJobSpec

from modelfleet_operator.capacity.manager import CapacityManager
from modelfleet_operator.common import reconcile as common
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.reconcile import PostEvent
from modelfleet_operator.conditions import find, is_true, rfc3339
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.training import builders
from modelfleet_operator.training.builders import Owner
from modelfleet_operator.training.policies.failure import decide_restart
from modelfleet_operator.training.policies.gang import gang_verdict
from modelfleet_operator.training.policies.gpu_hours import GpuAccount, account
from modelfleet_operator.training.policies.progress import read_progress, steps_column
from modelfleet_operator.training.policies.stall import stall_message
from modelfleet_operator.training.policies.success import all_workers_succeeded, job_condition_true
from modelfleet_operator.training.policies.ttl import ttl_expired
from modelfleet_operator.training.workers import WorkerFailure, WorkerSummary, summarize

logger = logging.getLogger(__name__)

KIND = "TrainingJob"
FINISHED = (c.TrainingJobPhase.SUCCEEDED.value, c.TrainingJobPhase.FAILED.value)
WARNING_REASONS = frozenset(
    {
        c.REASON_WORKER_FAILED,
        c.REASON_WORKER_EVICTED,
        c.REASON_STALLED,
        c.REASON_BACKOFF_LIMIT_EXCEEDED,
        c.REASON_SCHEDULING_TIMEOUT,
        c.REASON_WAITING_FOR_CAPACITY,
        c.REASON_INVALID_SPEC,
        c.REASON_CEILING_REACHED,
        c.REASON_POOL_CONFLICT,
        c.REASON_AZURE_THROTTLED,
        c.REASON_AZURE_ERROR,
        c.REASON_QUOTA_EXCEEDED,
        c.REASON_SKU_NOT_AVAILABLE,
        c.REASON_SERVICE_ACCOUNT_NOT_FOUND,
    }
)
JOB_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


@dataclass
class Pass(common.Pass[Owner, TrainingJobSpec]):
    """One reconcile pass over one TrainingJob: what was read and the status being drafted."""

    job: Manifest | None = None
    pods: list[Manifest] = field(default_factory=list)
    gpus_held: int = 0

    @property
    def restarts(self) -> int:
        restarts: int = self.draft.get("restarts", 0)
        return restarts

    def phase(self, phase: c.TrainingJobPhase) -> None:
        self.draft["phase"] = phase.value

    def workers(self, ready: int) -> None:
        nodes = self.spec.resources.nodes
        self.draft.update({"readyWorkers": ready, "totalWorkers": nodes, "workers": f"{ready}/{nodes}"})


class TrainingJobReconciler:
    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        post_event: PostEvent,
        clock: Callable[[], datetime] = common.utcnow,
        capacity: CapacityManager | None = None,
    ) -> None:
        self._kube = kube
        self._capacity = capacity
        self._config = config
        self._status = common.StatusWriter(kube, KIND, post_event, WARNING_REASONS)
        self._clock = clock
        self._children_ensured: dict[str, int | None] = {}
        """TrainingJob uid -> generation whose long-lived children were last ensured."""

    def forget(self, uid: str) -> None:
        self._children_ensured.pop(uid, None)
        if self._capacity is not None:
            self._capacity.release(uid)

    # ---- entry point ----------------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> None:
        body = self._status.read(namespace, name)
        if body is None:
            return
        now = self._clock()
        failed = c.TrainingJobPhase.FAILED.value
        training_job = self._status.parse(body, now, failed, TrainingJob.model_validate)
        if training_job is None:
            return
        run = Pass.start(body, Owner.of(training_job), training_job.spec, now)
        run.draft["observedGeneration"] = run.generation
        if run.recover_from_invalid_spec():
            run.phase(c.TrainingJobPhase.PENDING)
        steps: tuple[Callable[[Pass], bool], ...] = (
            self._finished,
            self._ensure_children,
            self._observe,
            self._suspend,
            self._replace_stale_job,
            self._ensure_job,
            self._evaluate_gang,
        )
        for step in steps:
            if step(run):
                break
        self._ensure_capacity(run)
        self._account_gpus(run)
        self._flush(run)

    # ---- steps ----------------------------------------------------------------------------------
    def _finished(self, run: Pass) -> bool:
        """A Succeeded or Failed job: make sure no worker holds GPUs, honour the TTL, do nothing else."""
        if run.draft.get("phase") not in FINISHED:
            return False
        if run.draft["phase"] == c.TrainingJobPhase.FAILED.value:
            job = self._get_job(run)
            if job is not None and not job["metadata"].get("deletionTimestamp"):
                self._delete_job(run, propagation="Background")
        if ttl_expired(
            completion_time=common.parse_time(run.draft.get("completionTime")),
            ttl_seconds=run.spec.ttl_seconds_after_finished,
            now=run.now,
        ):
            logger.info(
                "deleting TrainingJob %s/%s: ttlSecondsAfterFinished passed",
                run.owner.namespace,
                run.owner.name,
            )
            self._kube.delete(API_VERSION, KIND, run.owner.name, run.owner.namespace)
        return True

    def _ensure_children(self, run: Pass) -> bool:
        """ServiceAccount, Role, RoleBinding, ConfigMaps and Service, once per spec generation. A
        RoleBinding whose subject changed (a new ``serviceAccountName`` or operator runtime account) is
        patched, so the next attempt's workers may write their progress."""
        if self._children_ensured.get(run.owner.uid, -1) == run.generation:
            return False
        for manifest in builders.static_children(run.owner, run.spec, self._identity(run)):
            existing, created = self._kube.create_if_absent(manifest)
            if created:
                continue
            kind = manifest["kind"]
            field = {"ConfigMap": "data", "RoleBinding": "subjects"}.get(kind)
            if field is not None and field in manifest and existing.get(field) != manifest[field]:
                self._kube.patch(
                    manifest["apiVersion"],
                    kind,
                    manifest["metadata"]["name"],
                    run.owner.namespace,
                    {field: manifest[field]},
                )
        self._children_ensured[run.owner.uid] = run.generation
        return False

    def _observe(self, run: Pass) -> bool:
        """Read the worker Job, its pods and the published progress (mirrored into the status)."""
        run.job = self._get_job(run)
        if run.job is not None:
            selector = f"{JOB_CONTROLLER_UID_LABEL}={run.job['metadata']['uid']}"
            run.pods = self._kube.list("v1", "Pod", run.owner.namespace, label_selector=selector)
            held = summarize(run.pods).scheduled
            run.gpus_held = held * run.spec.resources.gpus_per_node
        progress = read_progress(
            self._kube.get("v1", "ConfigMap", run.owner.names.progress_config_map, run.owner.namespace)
        )
        if progress is not None:
            run.draft["progress"] = progress.to_wire()
            run.draft["steps"] = steps_column(progress)
        return False

    def _suspend(self, run: Pass) -> bool:
        if not run.spec.suspend:
            if is_true(run.draft.get("conditions", []), c.COND_SUSPENDED):
                run.condition(
                    c.COND_SUSPENDED,
                    False,
                    c.REASON_RESUMED,
                    "spec.suspend was cleared; the workers are recreated and resume from the latest "
                    "checkpoint.",
                )
            return False
        if run.job is not None and not run.job["metadata"].get("deletionTimestamp"):
            self._delete_job(run, propagation="Foreground")
        run.gpus_held = 0
        run.phase(c.TrainingJobPhase.SUSPENDED)
        run.workers(0)
        message = (
            "spec.suspend is true: the workers were deleted, checkpoints are kept. Set it to false to resume."
        )
        run.condition(c.COND_SUSPENDED, True, c.REASON_SUSPENDED_BY_USER, message)
        if find(run.draft.get("conditions", []), c.COND_RUNNING) is not None:
            run.condition(c.COND_RUNNING, False, c.REASON_SUSPENDED_BY_USER, message)
        return True

    def _replace_stale_job(self, run: Pass) -> bool:
        """A Job of an earlier attempt (or one being deleted) must be gone before the next gang starts,
        so two gangs never compete for the same GPUs."""
        job = run.job
        if job is None:
            return False
        attempt = job["metadata"].get("labels", {}).get(c.LABEL_RESTART_ATTEMPT)
        deleting = bool(job["metadata"].get("deletionTimestamp"))
        if attempt == str(run.restarts) and not deleting:
            return False
        if not deleting:
            self._delete_job(run, propagation="Foreground")
        run.phase(c.TrainingJobPhase.PENDING)
        run.workers(0)
        return True

    def _ensure_job(self, run: Pass) -> bool:
        """Create the worker Job, once its runtime ServiceAccount exists: until then the job stays
        Pending, and the scheduling timeout (counted from the Job's creation) does not run."""
        if run.job is not None:
            return False
        identity = self._identity(run)
        if not run.service_account_ready(self._kube, identity):
            run.phase(c.TrainingJobPhase.PENDING)
            run.workers(0)
            return True
        image = run.spec.image or self._config.training_image
        manifest = builders.worker_job(
            run.owner, run.spec, image=image, attempt=run.restarts, identity=identity
        )
        run.job, _ = self._kube.create_if_absent(manifest)
        run.phase(c.TrainingJobPhase.SCHEDULING)
        run.workers(0)
        run.condition(
            c.COND_SCHEDULED,
            False,
            c.REASON_WAITING_FOR_CAPACITY,
            f"Created {run.spec.resources.nodes} worker pod(s) (attempt {run.restarts}); waiting for nodes.",
        )
        return True

    def _evaluate_gang(self, run: Pass) -> bool:
        job = run.job
        assert job is not None, "steps before this one return early without a Job"
        spec = run.spec
        nodes = spec.resources.nodes
        summary = summarize(run.pods)
        run.workers(summary.ready)
        if job.get("spec", {}).get("suspend"):
            run.phase(c.TrainingJobPhase.PENDING)
            run.condition(
                c.COND_SCHEDULED,
                False,
                c.REASON_WAITING_FOR_ADMISSION,
                f"Waiting for Kueue to admit the workers (queue {spec.queue_name!r}).",
            )
            return True
        if all_workers_succeeded(summary, job, nodes=nodes):
            self._succeed(run)
            return True
        failure = summary.failure or _job_failure(job)
        if failure is not None:
            cause = c.REASON_WORKER_EVICTED if failure.evicted else c.REASON_WORKER_FAILED
            self._restart_or_fail(run, cause, f"Worker {failure.pod} failed: {failure.detail}")
            return True
        if not self._gang_placed(run, summary, job):
            return True
        if summary.running and not run.draft.get("startTime"):
            run.draft["startTime"] = rfc3339(run.now)
        if summary.ready + len(summary.succeeded_indexes) < nodes:
            run.phase(c.TrainingJobPhase.SCHEDULING)
            return True
        run.phase(c.TrainingJobPhase.RUNNING)
        gpus = nodes * spec.resources.gpus_per_node
        run.condition(
            c.COND_RUNNING, True, c.REASON_ALL_WORKERS_RUNNING, f"All {nodes} workers run ({gpus} GPUs)."
        )
        self._check_stall(run)
        return True

    def _ensure_capacity(self, run: Pass) -> None:
        """With the capacity manager on: ask for a pool that fits the gang and report what it did."""
        if self._capacity is None:
            return
        conditions = run.draft.get("conditions", [])
        if run.draft.get("phase") in FINISHED or run.spec.suspend or run.waiting_for_service_account():
            self._capacity.release(run.owner.uid)
            return
        scheduled = find(conditions, c.COND_SCHEDULED)
        if scheduled is not None and scheduled["reason"] == c.REASON_WAITING_FOR_ADMISSION:
            return  # Kueue decides when the workers may run; ask for nodes once it admits them
        all_placed = is_true(conditions, c.COND_SCHEDULED)
        run.ask_capacity(self._capacity, run.spec.resources, run.spec.resources.nodes, scheduled=all_placed)

    # ---- policies applied -------------------------------------------------------------------------
    def _gang_placed(self, run: Pass, summary: WorkerSummary, job: Manifest) -> bool:
        resources = run.spec.resources
        placement = resources.node_pool or resources.instance_type.value
        verdict = gang_verdict(
            summary,
            nodes=resources.nodes,
            placement=placement,
            waiting_since=common.parse_time(job["metadata"]["creationTimestamp"]) or run.now,
            now=run.now,
            timeout_seconds=run.spec.scheduling_timeout_seconds,
        )
        if verdict.all_scheduled:
            run.condition(c.COND_SCHEDULED, True, c.REASON_ALL_WORKERS_SCHEDULED, verdict.message)
            if find(run.draft.get("conditions", []), c.COND_UNSCHEDULABLE):
                run.condition(c.COND_UNSCHEDULABLE, False, c.REASON_ALL_WORKERS_SCHEDULED, verdict.message)
            return True
        if not verdict.timed_out:
            run.phase(c.TrainingJobPhase.SCHEDULING)
            run.condition(c.COND_SCHEDULED, False, c.REASON_WAITING_FOR_CAPACITY, verdict.message)
            if verdict.unschedulable:
                run.condition(c.COND_UNSCHEDULABLE, True, c.REASON_WAITING_FOR_CAPACITY, verdict.message)
            return False
        run.condition(c.COND_SCHEDULED, False, c.REASON_SCHEDULING_TIMEOUT, verdict.message)
        run.condition(c.COND_UNSCHEDULABLE, True, c.REASON_SCHEDULING_TIMEOUT, verdict.message)
        run.condition(c.COND_FAILED, True, c.REASON_SCHEDULING_TIMEOUT, verdict.message)
        self._finish(run, c.TrainingJobPhase.FAILED)
        self._flush(run)
        self._delete_job(run, propagation="Background")
        return False

    def _check_stall(self, run: Pass) -> None:
        running = find(run.draft.get("conditions", []), c.COND_RUNNING)
        running_since = common.parse_time(running["lastTransitionTime"]) if running else run.now
        progress = run.draft.get("progress")
        last_progress = TrainingProgress.model_validate(progress).updated_at if progress else None
        message = stall_message(
            last_progress_at=last_progress,
            running_since=running_since or run.now,
            now=run.now,
            timeout_seconds=run.spec.stall_timeout_seconds,
        )
        if message is not None:
            self._restart_or_fail(run, c.REASON_STALLED, message)

    def _restart_or_fail(self, run: Pass, cause: str, detail: str) -> None:
        decision = decide_restart(cause, detail, restarts=run.restarts, backoff_limit=run.spec.backoff_limit)
        run.workers(0)
        run.gpus_held = 0
        run.condition(c.COND_RUNNING, False, cause, decision.message)
        if decision.restart:
            run.draft["restarts"] = run.restarts + 1
            run.draft["lastRestartReason"] = cause
            run.phase(c.TrainingJobPhase.PENDING)
            self._account_gpus(run)
            self._flush(run)
            self._delete_job(run, propagation="Foreground")
            return
        run.draft["lastRestartReason"] = cause
        run.condition(c.COND_FAILED, True, decision.reason, decision.message)
        self._finish(run, c.TrainingJobPhase.FAILED)
        self._account_gpus(run)
        self._flush(run)
        self._delete_job(run, propagation="Background")

    def _succeed(self, run: Pass) -> None:
        run.gpus_held = 0
        run.workers(0)
        message = f"All {run.spec.resources.nodes} workers exited 0; the output is at {run.spec.output.uri}."
        run.condition(c.COND_RUNNING, False, c.REASON_TRAINING_SUCCEEDED, message)
        run.condition(c.COND_COMPLETE, True, c.REASON_TRAINING_SUCCEEDED, message)
        self._finish(run, c.TrainingJobPhase.SUCCEEDED)

    def _finish(self, run: Pass, phase: c.TrainingJobPhase) -> None:
        run.phase(phase)
        run.draft["completionTime"] = rfc3339(run.now)

    def _account_gpus(self, run: Pass) -> None:
        previous = GpuAccount(
            gpu_hours=float(run.draft.get("gpuHours", 0.0)),
            gpus=int(run.draft.get("gpus") or 0),
            updated_at=common.parse_time(run.draft.get("gpuHoursUpdatedAt")),
        )
        updated = account(previous, gpus_now=run.gpus_held, now=run.now)
        run.draft["gpuHours"] = updated.gpu_hours
        run.draft["gpus"] = updated.gpus
        if updated.updated_at is None:
            run.draft.pop("gpuHoursUpdatedAt", None)
        else:
            run.draft["gpuHoursUpdatedAt"] = rfc3339(updated.updated_at)

    def _identity(self, run: Pass) -> RuntimeIdentity:
        return RuntimeIdentity.of(self._config, run.spec.service_account_name)

    # ---- I/O ------------------------------------------------------------------------------------
    def _get_job(self, run: Pass) -> Manifest | None:
        return self._kube.get("batch/v1", "Job", run.owner.names.job, run.owner.namespace)

    def _delete_job(self, run: Pass, *, propagation: str) -> None:
        self._kube.delete(
            "batch/v1", "Job", run.owner.names.job, run.owner.namespace, propagation=propagation
        )

    def _flush(self, run: Pass) -> None:
        self._status.flush(run)


def _job_failure(job: Manifest) -> WorkerFailure | None:
    """A failed Job whose failed pod is already gone still names why it failed."""
    if not job_condition_true(job, "Failed"):
        return None
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Failed":
            detail = f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".rstrip(": ")
            return WorkerFailure(pod=job["metadata"]["name"], evicted=False, detail=detail)
    return None
