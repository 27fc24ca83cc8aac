"""The TrainingJob plan: from the spec, the stored status and what was observed, the children it
wants, the status, and when to look again (pure).

A short list of ordered steps (KAITO's shape); a step that decided the pass returns True and the rest
are skipped. The long-lived children (ServiceAccount, Role, RoleBinding, ConfigMaps, Service) are
applied on every pass of an unfinished job, so a hand edit is put back; the worker Job is applied
while its gang is the current attempt. A Job the plan does not name is pruned: a suspended job's, a
failed job's, the gang of an earlier attempt and a gang released by a requeue, which go before the next
one starts, so two gangs never compete for the same GPUs.

Three decisions must survive a crash between the status write and the deletion they lead to: a restart
(``restarts`` is counted first), a requeue (``requeues`` and ``requeueTime`` first) and a final failure
(phase Failed first). Each keeps the old Job in its own pass and asks for the next pass at once
(``requeue_at`` now), which prunes it; a crash in between repeats the prune, never the count, and
never reruns a failed gang.

With ``spec.queueName`` and Kueue installed, Kueue admits the gang: the Job is created suspended and
the plan reports what Kueue says while it stays so (``policies.kueue``); the scheduling timeout counts
from the admission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.cost import PriceTable
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.training import attempt_logs_location
from modelfleet_api.trainingjob import SchedulingTimeoutAction, TrainingJobSpec, TrainingJobStatus

from modelfleet_operator.common.cost import account, vm_share
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.plan import (
    RELEASE,
    CapacityAsk,
    CapacityRelease,
    ChildKey,
    Draft,
    Event,
    Plan,
    key_of,
)
from modelfleet_operator.common.references import NOTHING_NAMED, Lookup
from modelfleet_operator.conditions import find, is_true, object_condition
from modelfleet_operator.status import status_patch
from modelfleet_operator.training import builders
from modelfleet_operator.training.builders import Owner
from modelfleet_operator.training.policies.failure import decide_restart, record_failure
from modelfleet_operator.training.policies.gang import GangVerdict, failed_message, gang_verdict
from modelfleet_operator.training.policies.gpu_hours import GpuAccount
from modelfleet_operator.training.policies.gpu_hours import account as account_gpu_hours
from modelfleet_operator.training.policies.grace import grace_period
from modelfleet_operator.training.policies.kueue import kueue_hold
from modelfleet_operator.training.policies.output import training_output
from modelfleet_operator.training.policies.progress import steps_column
from modelfleet_operator.training.policies.requeue import requeue
from modelfleet_operator.training.policies.stall import stall_message
from modelfleet_operator.training.policies.success import all_workers_succeeded, job_condition_true
from modelfleet_operator.training.policies.ttl import ttl_expired
from modelfleet_operator.training.workers import WorkerFailure, WorkerSummary, summarize
from modelfleet_operator.worker_nodes import PLAIN_NODES, WorkerNodeSettings

Manifest = dict[str, Any]
Phase = c.TrainingJobPhase
FINISHED = (Phase.SUCCEEDED, Phase.FAILED)
WORKER_CAUSES = (c.REASON_WORKER_FAILED, c.REASON_WORKER_EVICTED)
"""Ends of a gang that the Job controller completes itself (it stops the other workers)."""
KUEUE_HOLDS = (c.REASON_WAITING_FOR_ADMISSION, c.REASON_PREEMPTED, c.REASON_EVICTED_BY_KUEUE)
"""Reasons of Scheduled=False while Kueue holds the worker Job suspended."""
JOB_POD_FAILURE_POLICY = "PodFailurePolicy"
"""Reason of a Job's Failed condition when a rule of its pod failure policy failed it."""
POLICY_POD = re.compile(r"Pod [^/\s]+/(\S+) ")
"""The pod a pod-failure-policy message names ("Pod NAMESPACE/NAME has condition ...")."""


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What a TrainingJob pass read from the indexes."""

    job: Manifest | None = None
    """The worker Job (of any attempt), as indexed."""
    pods: list[Manifest] = field(default_factory=list)
    """The pods of that Job."""
    progress: TrainingProgress | None = None
    """What rank 0 published in the progress ConfigMap."""
    children: frozenset[ChildKey] = frozenset()
    """Every child that exists, for a finished job to keep."""
    runtime_account_exists: bool = True
    """The runtime ServiceAccount (when one applies) exists."""
    references: Lookup = NOTHING_NAMED
    """The Secrets, claims and PriorityClass the spec names, and which of them are missing."""
    kueue: bool = False
    """Kueue's LocalQueue CRD is served."""
    workload: Manifest | None = None
    """Kueue's Workload of the worker Job (its name and conditions), once Kueue made one."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The operator's settings the plan depends on."""

    image: str
    """Image of the workers unless the spec names one."""
    identity: RuntimeIdentity
    prices: PriceTable | None = None
    """The operator's price table (``status.cost``)."""
    nodes: WorkerNodeSettings = PLAIN_NODES
    """What the workers get from their nodes: InfiniBand, the node cache."""


@dataclass
class _Planner:
    owner: Owner
    spec: TrainingJobSpec
    observed: Observed
    settings: Settings
    draft: Draft[TrainingJobStatus]
    apply: list[Manifest] = field(default_factory=list)
    keep: set[ChildKey] = field(default_factory=set)
    requeue_at: datetime | None = None
    workers_held: int = 0
    """Worker pods holding nodes (and GPUs) after this pass."""

    @property
    def status(self) -> TrainingJobStatus:
        return self.draft.status

    @property
    def now(self) -> datetime:
        return self.draft.now

    def phase(self, phase: Phase) -> None:
        self.status.phase = phase

    def workers(self, ready: int) -> None:
        nodes = self.spec.resources.nodes
        self.status.ready_workers, self.status.total_workers = ready, nodes
        self.status.workers = f"{ready}/{nodes}"

    def deadline(self, moment: datetime) -> None:
        self.requeue_at = moment if self.requeue_at is None else min(self.requeue_at, moment)

    def keep_job(self) -> None:
        self.keep.add(("Job", self.owner.names.job))

    # ---- steps ----------------------------------------------------------------------------------
    def finished(self) -> bool:
        """A Succeeded job keeps its children (the workers' logs stay readable). A Failed one keeps its
        Job too when a worker's failure ended it: the Job controller stops the other workers itself, a
        failed pod holds no GPU, and ``kubectl logs`` of the failed worker keeps working. A gang the
        operator gave up on (a stall, no nodes) still holds GPUs: its Job goes. All are deleted once
        their TTL passed."""
        if self.status.phase not in FINISHED:
            return False
        self.keep = set(self.observed.children)
        if self.status.phase is Phase.FAILED and self._final_cause() not in WORKER_CAUSES:
            self.keep.discard(("Job", self.owner.names.job))
        ttl = self.spec.ttl_seconds_after_finished
        completed = self.status.completion_time
        if ttl is not None and completed is not None:
            self.deadline(completed + timedelta(seconds=ttl))
        return True

    def _final_cause(self) -> str | None:
        """Why the job failed: the Failed condition's reason, or past the backoff limit the cause of
        the last attempt's end (the Running condition's reason)."""
        failed = self.draft.find(c.COND_FAILED)
        if failed is not None and failed.reason == c.REASON_BACKOFF_LIMIT_EXCEEDED:
            running = self.draft.find(c.COND_RUNNING)
            return running.reason if running is not None else None
        return failed.reason if failed is not None else None

    def static_children(self) -> bool:
        self.apply += builders.static_children(
            self.owner, self.spec, self.settings.identity, self.settings.nodes
        )
        return False

    def mirror_progress(self) -> bool:
        progress = self.observed.progress
        if progress is not None:
            self.status.progress = progress
            self.status.steps = steps_column(progress)
            self.status.evaluation = progress.evaluation
        return False

    def suspended(self) -> bool:
        """spec.suspend: the Job goes (pruned), checkpoints stay."""
        if not self.spec.suspend:
            if is_true(self.status.conditions, c.COND_SUSPENDED):
                message = (
                    "spec.suspend was cleared; the workers are recreated and resume from the latest "
                    "checkpoint."
                )
                self.draft.condition(c.COND_SUSPENDED, False, c.REASON_RESUMED, message)
            return False
        self.workers_held = 0
        self.phase(Phase.SUSPENDED)
        self.workers(0)
        message = (
            "spec.suspend is true: the workers were deleted, checkpoints are kept. Set it to false to resume."
        )
        self.draft.condition(c.COND_SUSPENDED, True, c.REASON_SUSPENDED_BY_USER, message)
        if self.draft.find(c.COND_RUNNING) is not None:
            self.draft.condition(c.COND_RUNNING, False, c.REASON_SUSPENDED_BY_USER, message)
        return True

    def stale_job(self) -> bool:
        """A Job of an earlier attempt, one a requeue released, or one being deleted must be gone before
        the next gang starts; not naming it prunes it (foreground: its pods go first), and its deletion
        wakes the next pass."""
        job = self.observed.job
        if job is None:
            return False
        attempt = (job["metadata"].get("labels") or {}).get(c.LABEL_RESTART_ATTEMPT)
        current = attempt == str(self.status.restarts) and not job["metadata"].get("deletionTimestamp")
        if current and not self._released(job):
            return False
        self.workers(0)
        if self.status.requeue_time is not None:
            self.phase(Phase.SCHEDULING)
            self.deadline(self.status.requeue_time)
        else:
            self.phase(Phase.PENDING)
        return True

    def _released(self, job: Manifest) -> bool:
        """The Job is the gang a requeue released: made before the time its successor is due."""
        retry = self.status.requeue_time
        created = _time(job["metadata"].get("creationTimestamp"))
        return retry is not None and (created is None or created < retry)

    def create_job(self) -> bool:
        """The worker Job, once a requeued gang's backoff is over and its runtime ServiceAccount and every
        object the spec names exist: until then no scheduling timeout (counted from the Job's start)
        runs. With a queue name and Kueue installed, the Job is created suspended for Kueue to admit."""
        if self.observed.job is not None:
            return False
        if self._backing_off():
            return True
        identity, namespace = self.settings.identity, self.owner.namespace
        references = self.draft.references_ready(self.observed.references, namespace)
        account = self.draft.service_account_ready(identity, self.observed.runtime_account_exists, namespace)
        if not (references and account):
            self.phase(Phase.PENDING)
            self.workers(0)
            return True
        grace = grace_period(self.spec, self.status.progress)
        self.status.termination_grace_period_seconds = grace.seconds
        queued = bool(self.spec.queue_name) and self.observed.kueue
        self.apply.append(self._worker_job(suspend=queued))
        self.workers(0)
        nodes, attempt = self.spec.resources.nodes, self.status.restarts
        if queued:
            self.phase(Phase.PENDING)
            message = (
                f"Created the worker Job of {nodes} worker(s) (attempt {attempt}), suspended until Kueue "
                f"admits it (queue {self.spec.queue_name!r})."
            )
            self.draft.condition(c.COND_SCHEDULED, False, c.REASON_WAITING_FOR_ADMISSION, message)
            return True
        self.phase(Phase.SCHEDULING)
        unqueued = (
            " spec.queueName is set but Kueue is not installed, so the workers are not queued."
            if self.spec.queue_name
            else ""
        )
        message = f"Created {nodes} worker pod(s) (attempt {attempt}); waiting for nodes.{unqueued}"
        self.draft.condition(c.COND_SCHEDULED, False, c.REASON_WAITING_FOR_CAPACITY, message)
        if self.spec.scheduling_timeout_seconds > 0:
            self.deadline(self.now + timedelta(seconds=self.spec.scheduling_timeout_seconds))
        return True

    def _backing_off(self) -> bool:
        """A requeued gang is created again at ``status.requeueTime``; until then the job stays
        Scheduling (it still waits for nodes) with the condition the requeue set."""
        retry = self.status.requeue_time
        if retry is None:
            return False
        if self.now < retry:
            self.phase(Phase.SCHEDULING)
            self.workers(0)
            self.deadline(retry)
            return True
        self.status.requeue_time = None
        return False

    def gang(self) -> bool:
        job = self.observed.job
        assert job is not None, "the steps before this one return early without a Job"
        suspended = bool((job.get("spec") or {}).get("suspend"))
        self.apply.append(self._worker_job(suspend=suspended))
        summary = summarize(self.observed.pods)
        nodes = self.spec.resources.nodes
        self.workers(summary.ready)
        if suspended:
            self._held_by_kueue()
            return True
        if all_workers_succeeded(summary, job, nodes=nodes):
            self._succeed()
            return True
        failure = summary.failure or _job_failure(job)
        if failure is not None:
            cause = c.REASON_WORKER_EVICTED if failure.evicted else c.REASON_WORKER_FAILED
            who = f"Worker {failure.pod}" if failure.pod else "The worker Job"
            verb = "was evicted" if failure.evicted else "failed"
            self._restart_or_fail(cause, f"{who} {verb}: {failure.detail}", failure)
            return True
        if not self._gang_placed(summary, job):
            return True
        if summary.running and self.status.start_time is None:
            self.status.start_time = self.now
        if summary.ready + len(summary.succeeded_indexes) < nodes:
            self.phase(Phase.SCHEDULING)
            return True
        self.phase(Phase.RUNNING)
        gpus = nodes * self.spec.resources.gpus_per_node
        self.draft.condition(
            c.COND_RUNNING, True, c.REASON_ALL_WORKERS_RUNNING, f"All {nodes} workers run ({gpus} GPUs)."
        )
        self._check_stall()
        return True

    # ---- decisions --------------------------------------------------------------------------------
    def _worker_job(self, *, suspend: bool) -> Manifest:
        """The current attempt's Job, with the grace period chosen when it was created (a Job's pod
        template cannot change; a new measurement applies to the next attempt); ``suspend`` as
        ``builders.worker_job`` takes it."""
        image = self.spec.image or self.settings.image
        if self.status.termination_grace_period_seconds is None:  # a Job created by an older operator
            self.status.termination_grace_period_seconds = grace_period(self.spec, None).seconds
        return builders.worker_job(
            self.owner,
            self.spec,
            image=image,
            attempt=self.status.restarts,
            grace_seconds=self.status.termination_grace_period_seconds,
            identity=self.settings.identity,
            nodes=self.settings.nodes,
            suspend=suspend,
        )

    def _held_by_kueue(self) -> None:
        """Kueue holds the Job suspended: the gang is not admitted yet, or was evicted (a preemption);
        the condition quotes Kueue (``policies.kueue``)."""
        hold = kueue_hold(self.observed.workload, queue=self.spec.queue_name)
        self.phase(Phase.PENDING)
        self.draft.condition(c.COND_SCHEDULED, False, hold.reason, hold.message)
        if hold.evicted and self.draft.find(c.COND_RUNNING) is not None:
            self.draft.condition(c.COND_RUNNING, False, hold.reason, hold.message)

    def _gang_placed(self, summary: WorkerSummary, job: Manifest) -> bool:
        resources = self.spec.resources
        placement = resources.node_pool or resources.instance_type.value
        waiting_since = self._placeable_since(job)
        timeout = self.spec.scheduling_timeout_seconds
        verdict = gang_verdict(
            summary,
            nodes=resources.nodes,
            placement=placement,
            waiting_since=waiting_since,
            now=self.now,
            timeout_seconds=timeout,
        )
        if verdict.all_scheduled:
            self.draft.condition(c.COND_SCHEDULED, True, c.REASON_ALL_WORKERS_SCHEDULED, verdict.message)
            if self.draft.find(c.COND_UNSCHEDULABLE):
                self.draft.condition(
                    c.COND_UNSCHEDULABLE, False, c.REASON_ALL_WORKERS_SCHEDULED, verdict.message
                )
            return True
        if not verdict.timed_out:
            self.phase(Phase.SCHEDULING)
            self.draft.condition(c.COND_SCHEDULED, False, c.REASON_WAITING_FOR_CAPACITY, verdict.message)
            if verdict.unschedulable:
                self.draft.condition(
                    c.COND_UNSCHEDULABLE, True, c.REASON_WAITING_FOR_CAPACITY, verdict.message
                )
            if timeout > 0:
                self.deadline(waiting_since + timedelta(seconds=timeout))
            return False
        if self.spec.on_scheduling_timeout is SchedulingTimeoutAction.FAIL:
            message = failed_message(verdict, placement)
            self.draft.condition(c.COND_SCHEDULED, False, c.REASON_SCHEDULING_TIMEOUT, message)
            self.draft.condition(c.COND_UNSCHEDULABLE, True, c.REASON_SCHEDULING_TIMEOUT, message)
            self.draft.condition(c.COND_FAILED, True, c.REASON_SCHEDULING_TIMEOUT, message)
            self._fail_first()
        else:
            self._requeue(verdict, placement)
        return False

    def _placeable_since(self, job: Manifest) -> datetime:
        """Since when the gang could be placed: the Job's start (the Job controller sets it when the Job
        runs unsuspended, anew after each admission by Kueue). A Job that was suspended and has no start
        yet was just admitted; otherwise it started when it was created."""
        started = _time((job.get("status") or {}).get("startTime"))
        if started is not None:
            return started
        if object_condition(job, "Suspended") is not None:
            return self.now
        return _time(job["metadata"].get("creationTimestamp")) or self.now

    def _requeue(self, verdict: GangVerdict, placement: str) -> None:
        """Release a gang that timed out and queue it again (``policies.requeue``): the requeue is
        written first, and the next pass prunes the Job (``stale_job``)."""
        spec = self.spec
        decision = requeue(
            verdict,
            requeues=self.status.requeues,
            now=self.now,
            base_seconds=spec.requeue_backoff_seconds,
            max_seconds=spec.max_requeue_backoff_seconds,
            placement=placement,
        )
        self.status.requeues, self.status.requeue_time = decision.requeues, decision.retry_at
        self.phase(Phase.SCHEDULING)
        self.workers(0)
        self.workers_held = 0
        self.draft.condition(c.COND_SCHEDULED, False, c.REASON_GANG_REQUEUED, decision.message)
        self.draft.condition(c.COND_UNSCHEDULABLE, True, c.REASON_GANG_REQUEUED, decision.message)
        self.draft.events.append(
            Event(type="Warning", reason=c.REASON_GANG_REQUEUED, message=decision.message)
        )
        self._prune_job_next_pass()

    def _check_stall(self) -> None:
        running = self.draft.find(c.COND_RUNNING)
        running_since = running.last_transition_time if running else self.now
        progress = self.status.progress
        last_progress = progress.updated_at if progress else None
        timeout = self.spec.stall_timeout_seconds
        message = stall_message(
            last_progress_at=last_progress, running_since=running_since, now=self.now, timeout_seconds=timeout
        )
        if message is not None:
            self._restart_or_fail(c.REASON_STALLED, message)
        elif timeout > 0:
            last_sign = max(running_since, last_progress) if last_progress else running_since
            self.deadline(last_sign + timedelta(seconds=timeout))

    def _restart_or_fail(self, cause: str, detail: str, worker: WorkerFailure | None = None) -> None:
        """Restart the gang or give up; either way the attempt's failure goes into ``status.failures``
        and an event (the one its condition's change posts, or the same when the reason stays)."""
        restarts = self.status.restarts
        decision = decide_restart(cause, detail, restarts=restarts, backoff_limit=self.spec.backoff_limit)
        self.workers(0)
        self.workers_held = 0
        self.draft.condition(c.COND_RUNNING, False, cause, decision.message)
        self.draft.events.append(Event(type="Warning", reason=cause, message=decision.message))
        self.status.last_restart_reason = cause
        self.status.failures = record_failure(
            self.status.failures,
            attempt=restarts,
            cause=cause,
            detail=detail,
            worker=worker,
            logs=attempt_logs_location(self.spec.checkpoint, self.spec.output, restarts),
            now=self.now,
        )
        if decision.restart:
            self.status.restarts = restarts + 1
            self.phase(Phase.PENDING)
            self._prune_job_next_pass()
            return
        self.draft.condition(c.COND_FAILED, True, decision.reason, decision.message)
        self._fail_first()

    def _fail_first(self) -> None:
        """Failed now; the next pass (asked for at once) prunes the Job unless a worker's failure ended
        it (``finished``)."""
        self._finish(Phase.FAILED)
        self.workers_held = 0
        self._prune_job_next_pass()

    def _prune_job_next_pass(self) -> None:
        """Keep the Job in this pass, whose status write records the decision that ends it, and ask for
        the next pass at once, which prunes it."""
        self.keep_job()
        self.apply = [m for m in self.apply if m["kind"] != "Job"]
        self.deadline(self.now)

    def _succeed(self) -> None:
        self.workers_held = 0
        self.workers(0)
        message = (
            f"All {self.spec.resources.nodes} workers exited 0; the output is at {self.spec.output.uri}."
        )
        self.draft.condition(c.COND_RUNNING, False, c.REASON_TRAINING_SUCCEEDED, message)
        self.draft.condition(c.COND_COMPLETE, True, c.REASON_TRAINING_SUCCEEDED, message)
        self.status.output = training_output(self.spec, self.observed.progress or self.status.progress)
        self._finish(Phase.SUCCEEDED)
        self.keep_job()
        self.apply = [m for m in self.apply if m["kind"] != "Job"]

    def _finish(self, phase: Phase) -> None:
        self.phase(phase)
        self.status.completion_time = self.now
        ttl = self.spec.ttl_seconds_after_finished
        if ttl is not None:
            self.deadline(self.now + timedelta(seconds=ttl))

    # ---- after the steps ----------------------------------------------------------------------------
    def capacity(self) -> CapacityAsk | CapacityRelease | None:
        """What to ask the capacity manager: nothing while Kueue holds the workers, else the gang's nodes
        until it is placed; a finished or suspended job, or one waiting for its ServiceAccount or a
        reference, releases its demand."""
        if (
            self.status.phase in FINISHED
            or self.spec.suspend
            or self.draft.waiting_for_service_account()
            or self.draft.waiting_for_references()
        ):
            return RELEASE
        scheduled = find(self.status.conditions, c.COND_SCHEDULED)
        if scheduled is not None and scheduled.reason in KUEUE_HOLDS:
            return None
        all_placed = is_true(self.status.conditions, c.COND_SCHEDULED)
        return CapacityAsk(
            placement=self.spec.resources, nodes=self.spec.resources.nodes, scheduled=all_placed
        )

    def account_cost(self, *, writing: bool) -> None:
        """``status.cost`` from the VM shares the workers hold (``common.cost``); ``writing``: the status
        is written this pass anyway."""
        resources = self.spec.resources
        self.status.cost = account(
            self.status.cost,
            vms_now=vm_share(resources, self.workers_held, resources.gpus_per_node),
            now=self.now,
            table=self.settings.prices,
            placement=resources,
            writing=writing,
        )

    def account_gpus(self, stored: dict[str, Any]) -> bool:
        """Bring ``gpuHours`` up to date when the GPUs held change, or (at most once a minute, see the
        policy) when the status is written anyway: an idle running job then writes nothing (``gpus`` x
        the time since ``gpuHoursUpdatedAt`` is what it used since). Whether the status is written
        this pass: it differs from ``stored`` in any other field, or in the GPUs held."""
        status = self.status
        changing = status_patch(stored, status.to_wire()) is not None
        gpus_held = self.workers_held * self.spec.resources.gpus_per_node
        if not changing and gpus_held == (status.gpus or 0):
            return False
        previous = GpuAccount(
            gpu_hours=status.gpu_hours, gpus=status.gpus or 0, updated_at=status.gpu_hours_updated_at
        )
        updated = account_gpu_hours(previous, gpus_now=gpus_held, now=self.now)
        status.gpu_hours, status.gpus, status.gpu_hours_updated_at = (
            updated.gpu_hours,
            updated.gpus,
            updated.updated_at,
        )
        return True


def plan(
    owner: Owner,
    spec: TrainingJobSpec,
    generation: int | None,
    status: TrainingJobStatus,
    observed: Observed,
    now: datetime,
    settings: Settings,
) -> Plan[TrainingJobStatus]:
    stored = status.to_wire()
    planner = _Planner(owner, spec, observed, settings, Draft(status, now, generation))
    planner.workers_held = summarize(observed.pods).scheduled
    status.observed_generation = generation
    if planner.finished():
        completed = status.completion_time
        expired = ttl_expired(completion_time=completed, ttl_seconds=spec.ttl_seconds_after_finished, now=now)
        return Plan(
            status=status,
            keep=frozenset(planner.keep),
            requeue_at=planner.requeue_at,
            capacity=RELEASE,
            delete_owner=expired,
        )
    steps = (
        planner.static_children,
        planner.mirror_progress,
        planner.suspended,
        planner.stale_job,
        planner.create_job,
        planner.gang,
    )
    for step in steps:
        if step():
            break
    capacity = planner.capacity()
    planner.account_cost(writing=planner.account_gpus(stored))
    keep = frozenset(planner.keep - {key_of(m) for m in planner.apply})
    return Plan(
        status=status,
        apply=tuple(planner.apply),
        keep=keep,
        events=tuple(planner.draft.events),
        requeue_at=planner.requeue_at,
        capacity=capacity,
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _job_failure(job: Manifest) -> WorkerFailure | None:
    """A failed Job whose failed pod is already gone still names why it failed; its pod failure
    policy (``builders.DISRUPTED_WORKER_RULE``) says when a worker was disrupted."""
    if not job_condition_true(job, "Failed"):
        return None
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed":
            message = str(cond.get("message", ""))
            detail = f"{cond.get('reason', 'Failed')}: {message}".rstrip(": ")
            evicted = cond.get("reason") == JOB_POD_FAILURE_POLICY and "DisruptionTarget" in message
            named = POLICY_POD.match(message)
            return WorkerFailure(pod=named.group(1) if named else None, evicted=evicted, detail=detail)
    return None
