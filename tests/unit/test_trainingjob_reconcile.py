"""The TrainingJob plan, compared whole, and its passes over an in-memory API: each child applied once
and put back when edited by hand, crash-safe restart counting, the deadlines that replace polling, and
status written only on change. (The cluster tier runs the same code against a real API server.)"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api import contract
from modelfleet_api.common import Condition
from modelfleet_api.evaluation import EvaluationPoint, EvaluationStatus
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJob, TrainingJobStatus
from modelfleet_operator.common.identity import NO_IDENTITY
from modelfleet_operator.common.plan import CapacityAsk, Plan
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.training import builders
from modelfleet_operator.training import plan as planning
from modelfleet_operator.training.builders import Owner
from modelfleet_operator.training.reconcile import TrainingJobController

from tests.unit.fake_kube import FakeKube, Harness

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
NS = "ml"
SPEC = {
    "model": {"uri": "/m"},
    "dataset": {"uri": "/d"},
    "output": {"uri": "/o"},
    "resources": {"instanceType": "Standard_NC40adis_H100_v5", "nodes": 2},
}


def body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "tiny", "namespace": NS, "uid": "tj-uid", "generation": 1},
        "spec": {**SPEC, **spec},
    }


def make(
    kube: FakeKube,
    config: OperatorConfig | None = None,
    clock: Callable[[], datetime] | None = None,
    **spec: Any,
) -> Harness:
    ticks = iter(T0 + timedelta(seconds=s) for s in itertools.count())
    controller = TrainingJobController(config or OperatorConfig(training_image="img:1"))
    return Harness(kube, controller, body(**spec), clock or (lambda: next(ticks)))


def add_worker(kube: FakeKube, index: int, phase: str, **status: Any) -> None:
    """A worker pod of the current Job, as the Job controller and the kubelet report it."""
    job = kube.objects[("Job", NS, "tiny")]
    attempt = job["metadata"]["labels"][c.LABEL_RESTART_ATTEMPT]
    kube.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"tiny-{index}-{attempt}",
                "namespace": NS,
                "labels": {
                    **job["spec"]["template"]["metadata"]["labels"],
                    "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
                    "batch.kubernetes.io/job-completion-index": str(index),
                },
            },
            "spec": {"nodeName": f"node-{index}"},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}], **status},
        }
    )


def test_the_first_plan_applies_every_child_and_the_gang_whole() -> None:
    resource = TrainingJob.model_validate(body())
    owner = Owner.of(resource)
    settings = planning.Settings(image="img:1", identity=NO_IDENTITY)

    plan = planning.plan(owner, resource.spec, 1, TrainingJobStatus(), planning.Observed(), T0, settings)

    message = "Created 2 worker pod(s) (attempt 0); waiting for nodes."
    assert plan == Plan(
        status=TrainingJobStatus(
            phase=c.TrainingJobPhase.SCHEDULING,
            conditions=[
                Condition(
                    type=c.COND_SCHEDULED,
                    status="False",
                    reason=c.REASON_WAITING_FOR_CAPACITY,
                    message=message,
                    last_transition_time=T0,
                    observed_generation=1,
                )
            ],
            observed_generation=1,
            ready_workers=0,
            total_workers=2,
            workers="0/2",
            gpus=0,
            termination_grace_period_seconds=71,  # 94 GiB at 40,000 Mbps: 2 x 20.2 s + 30 s
        ),
        apply=(
            *builders.static_children(owner, resource.spec),
            builders.worker_job(owner, resource.spec, image="img:1", attempt=0),
        ),
        keep=frozenset(),
        requeue_at=T0 + timedelta(seconds=resource.spec.scheduling_timeout_seconds),
        capacity=CapacityAsk(placement=resource.spec.resources, nodes=2, scheduled=False),
    )


def test_passes_apply_each_child_once_and_idle_passes_write_nothing() -> None:
    kube = FakeKube()
    job = make(kube)

    job.reconcile()
    job.reconcile()

    assert kube.applies == [  # by wave: what the pods use, the binding, the pods' owner
        ("ServiceAccount", "tiny-worker"),
        ("Role", "tiny-worker"),
        ("ConfigMap", "tiny-progress"),
        ("ConfigMap", "tiny-config"),
        ("Service", "tiny"),
        ("RoleBinding", "tiny-worker"),
        ("Job", "tiny"),
    ]
    assert job.status["phase"] == "Scheduling"
    add_worker(kube, 0, "Running")
    add_worker(kube, 1, "Running")
    job.reconcile()
    assert (job.status["phase"], job.status["workers"], job.status["gpus"]) == ("Running", "2/2", 2)
    writes, applied = kube.status_writes, len(kube.applies)
    job.reconcile()
    assert (kube.status_writes, len(kube.applies)) == (writes, applied)
    # a restarted operator (a new engine, the same API state) applies nothing again
    make(kube).reconcile()
    assert len(kube.applies) == applied
    assert job.events == [
        ("Warning", "WaitingForCapacity"),
        ("Normal", "AllWorkersScheduled"),
        ("Normal", "AllWorkersRunning"),
    ]


def test_a_refused_role_binding_holds_back_the_worker_job_until_it_is_applied() -> None:
    """Workers never start without the binding that lets rank 0 publish progress: the Job is applied in
    a later wave than the RoleBinding, and a failed wave stops the pass."""
    kube = FakeKube()
    job = make(kube)
    kube.refuse_next_apply_of.add("RoleBinding")

    with pytest.raises(PermissionError):
        job.reconcile()
    assert kube.get("Job", NS, "tiny") is None

    job.reconcile()
    assert kube.applies[-2:] == [("RoleBinding", "tiny-worker"), ("Job", "tiny")]


def test_children_edited_by_hand_are_put_back_and_nothing_else_is_applied() -> None:
    kube = FakeKube()
    job = make(kube)
    job.reconcile()
    config = kube.objects[("ConfigMap", NS, "tiny-config")]
    wanted = dict(config["data"])
    config["data"] = {"config.yaml": "edited: by hand\n"}
    kube.objects[("RoleBinding", NS, "tiny-worker")]["subjects"][0]["name"] = "someone-else"
    kube.objects[("Service", NS, "tiny")]["spec"]["clusterIP"] = "None"  # what the API server keeps
    kube.objects[("Job", NS, "tiny")]["metadata"]["labels"]["batch.kubernetes.io/job-name"] = "tiny"
    del kube.applies[:]

    job.reconcile()

    assert kube.applies == [("ConfigMap", "tiny-config"), ("RoleBinding", "tiny-worker")]  # by wave
    assert kube.objects[("ConfigMap", NS, "tiny-config")]["data"] == wanted


def test_a_restart_is_counted_before_the_old_gang_is_deleted() -> None:
    kube = FakeKube()
    job = make(kube, backoffLimit=2)
    job.reconcile()
    add_worker(kube, 0, "Running")
    add_worker(kube, 1, "Failed", containerStatuses=[{"state": {"terminated": {"exitCode": 3}}}])

    job.reconcile()

    assert (job.status["restarts"], job.status["lastRestartReason"]) == (1, "WorkerFailed")
    assert ("Job", NS, "tiny") in kube.objects, "the count is written first, the gang goes next pass"
    assert job.requeue_at is not None and job.requeue_at <= datetime.now(UTC) + timedelta(days=1)
    kube.fail_next_delete = True
    with pytest.raises(ConnectionError):
        job.reconcile()  # the operator loses the API server in the middle of the prune
    assert job.status["restarts"] == 1 and ("Job", NS, "tiny") in kube.objects
    job.reconcile()  # ... and the next pass prunes the old gang, counting nothing twice
    assert ("Job", NS, "tiny") not in kube.objects
    assert (job.status["restarts"], job.status["phase"]) == (1, "Pending")
    job.reconcile()
    new_job = kube.objects[("Job", NS, "tiny")]
    assert new_job["metadata"]["labels"][c.LABEL_RESTART_ATTEMPT] == "1"
    env = {e["name"]: e.get("value") for e in new_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELFLEET_RESTART_ATTEMPT"] == "1"


def test_past_the_backoff_limit_a_failed_workers_job_is_kept_with_its_pod() -> None:
    """The Job controller stopped the other workers itself; the failed pod holds no GPU and its logs
    stay readable."""
    kube = FakeKube()
    job = make(kube, backoffLimit=0)
    job.reconcile()
    add_worker(kube, 0, "Failed", reason="Evicted", message="spot VM reclaimed")

    job.reconcile()

    assert (job.status["phase"], job.status["lastRestartReason"]) == ("Failed", "WorkerEvicted")
    assert job.conditions()["Failed"] == ("True", "BackoffLimitExceeded")
    job.reconcile()
    assert ("Job", NS, "tiny") in kube.objects and not kube.deletes
    applied, writes = len(kube.applies), kube.status_writes
    job.reconcile()
    assert (len(kube.applies), kube.status_writes, job.status["phase"]) == (applied, writes, "Failed")


def test_past_the_backoff_limit_a_stalled_gang_fails_first_and_goes_next() -> None:
    """A stalled gang's workers still run and hold their GPUs: the next pass deletes them."""
    kube = FakeKube()
    job = make(kube, backoffLimit=0, stallTimeoutSeconds=60)
    job.reconcile()
    for index in (0, 1):
        add_worker(kube, index, "Running")
    job.reconcile()
    assert job.status["phase"] == "Running"
    job.engine.clock = lambda: T0 + timedelta(hours=1)

    job.reconcile()

    assert job.conditions()["Failed"] == ("True", "BackoffLimitExceeded")
    assert job.status["failures"][-1]["reason"] == "Stalled"
    assert ("Job", NS, "tiny") in kube.objects
    job.reconcile()
    assert ("Job", NS, "tiny") not in kube.objects and ("Job", "tiny") in kube.deletes


def test_an_invalid_spec_is_reported_not_crashed_on() -> None:
    kube = FakeKube()
    job = make(kube)
    job.body["spec"]["resources"]["gpusPerNode"] = 0

    job.reconcile()

    failed = next(x for x in job.status["conditions"] if x["type"] == "Failed")
    assert (job.status["phase"], failed["reason"]) == ("Failed", "InvalidSpec")
    assert failed["message"].startswith(
        "spec.resources: Value error, gpusPerNode must be 1 to 1 on Standard_NC40adis_H100_v5. Fix the spec"
    )
    assert kube.applies == []
    assert job.events == [("Warning", "InvalidSpec")]


def test_an_invalid_spec_recovers_once_the_user_fixes_it() -> None:
    kube = FakeKube()
    job = make(kube)
    job.body["spec"]["resources"]["gpusPerNode"] = 0
    job.reconcile()
    assert job.status["phase"] == "Failed"

    job.body["spec"]["resources"]["gpusPerNode"] = 1
    job.body["metadata"]["generation"] = 2
    job.reconcile()

    assert "Failed" not in job.conditions()
    assert (job.status["phase"], job.status["observedGeneration"]) == ("Scheduling", 2)
    assert ("Job", NS, "tiny") in kube.objects
    assert job.events[-1] == ("Warning", "WaitingForCapacity")


def test_a_job_that_ran_and_failed_stays_failed_when_its_spec_is_edited() -> None:
    kube = FakeKube()
    job = make(kube)
    job.body["status"] = {
        "phase": "Failed",
        "completionTime": "2026-11-22T08:00:00Z",
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "InvalidSpec",
                "message": "m",
                "lastTransitionTime": "2026-11-22T08:00:00Z",
            }
        ],
    }
    job.reconcile()
    assert job.status["phase"] == "Failed"
    assert ("Job", NS, "tiny") not in kube.objects


def test_a_runtime_service_account_replaces_the_jobs_own_and_a_new_one_repoints_the_binding() -> None:
    kube = FakeKube()
    kube.add_service_account(NS, "modelfleet-runtime")
    kube.add_service_account(NS, "team-sa")
    job = make(kube, OperatorConfig(runtime_service_account="modelfleet-runtime"))

    job.reconcile()

    assert ("ServiceAccount", "tiny-worker") not in kube.applies
    pod = kube.objects[("Job", NS, "tiny")]["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "modelfleet-runtime"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    binding = kube.objects[("RoleBinding", NS, "tiny-worker")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelfleet-runtime", "namespace": NS}]

    job.body["spec"]["serviceAccountName"] = "team-sa"
    job.body["metadata"]["generation"] = 2
    job.reconcile()

    binding = kube.objects[("RoleBinding", NS, "tiny-worker")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "team-sa", "namespace": NS}]
    assert binding["roleRef"]["name"] == "tiny-worker", "only the subject changes"


def test_a_missing_runtime_service_account_holds_the_job_pending_without_timeout_until_it_exists() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(kube, clock=lambda: now[0], serviceAccountName="team-sa", schedulingTimeoutSeconds=60)

    job.reconcile()

    assert ("Job", NS, "tiny") not in kube.objects
    assert job.status["phase"] == "Pending"
    account = next(x for x in job.status["conditions"] if x["type"] == "ServiceAccountReady")
    assert (account["status"], account["reason"]) == ("False", "ServiceAccountNotFound")
    assert account["message"].startswith(
        "ServiceAccount team-sa (spec.serviceAccountName) does not exist in namespace ml"
    )
    assert job.events == [("Warning", "ServiceAccountNotFound")]
    assert job.requeue_at is None, "no deadline: the ServiceAccount's creation wakes the job"

    now[0] = T0 + timedelta(hours=2)  # far past schedulingTimeoutSeconds
    writes = kube.status_writes
    job.reconcile()
    assert (job.status["phase"], kube.status_writes) == ("Pending", writes), "waiting is not failing"
    assert ("Job", NS, "tiny") not in kube.objects

    kube.add_service_account(NS, "team-sa")
    job.reconcile()

    created = kube.objects[("Job", NS, "tiny")]
    assert created["spec"]["template"]["spec"]["serviceAccountName"] == "team-sa"
    assert job.status["phase"] == "Scheduling"
    assert job.conditions()["ServiceAccountReady"] == ("True", "ServiceAccountFound")
    assert ("Normal", "ServiceAccountFound") in job.events


def test_without_a_runtime_service_account_the_job_is_created_and_no_account_condition_set() -> None:
    kube = FakeKube()
    job = make(kube)

    job.reconcile()

    assert ("Job", NS, "tiny") in kube.objects
    assert "ServiceAccountReady" not in job.conditions()


def test_timeouts_are_deadlines_of_the_plan_not_polls() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(kube, clock=lambda: now[0], schedulingTimeoutSeconds=120, stallTimeoutSeconds=600)
    job.reconcile()
    assert job.requeue_at == T0 + timedelta(seconds=120), "the scheduling timeout"

    add_worker(kube, 0, "Running")
    add_worker(kube, 1, "Running")
    now[0] = T0 + timedelta(seconds=30)
    job.reconcile()
    assert job.status["phase"] == "Running"
    assert job.requeue_at == now[0] + timedelta(seconds=600), "the stall timeout, from Running"

    now[0] = T0 + timedelta(seconds=631)
    job.reconcile()
    assert (job.status["restarts"], job.status["lastRestartReason"]) == (1, "Stalled")


def test_a_finished_job_is_deleted_when_its_ttl_passes() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(kube, clock=lambda: now[0], ttlSecondsAfterFinished=300)
    job.reconcile()
    add_worker(kube, 0, "Succeeded")
    add_worker(kube, 1, "Succeeded")
    job.reconcile()
    assert job.status["phase"] == "Succeeded"
    assert job.requeue_at == T0 + timedelta(seconds=300)
    assert ("Job", NS, "tiny") in kube.objects, "a succeeded gang's pods keep their logs"

    now[0] = T0 + timedelta(seconds=300)
    job.reconcile()
    assert ("TrainingJob", "tiny") in kube.deletes


def test_an_idle_running_job_writes_no_gpu_hours_until_something_changes() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(kube, clock=lambda: now[0], stallTimeoutSeconds=0)
    job.reconcile()
    add_worker(kube, 0, "Running")
    add_worker(kube, 1, "Running")
    job.reconcile()
    writes = kube.status_writes
    now[0] = T0 + timedelta(hours=1)
    job.reconcile()
    assert kube.status_writes == writes

    add_worker(kube, 1, "Succeeded")
    add_worker(kube, 0, "Succeeded")
    job.reconcile()
    assert (job.status["phase"], job.status["gpus"], job.status["gpuHours"]) == ("Succeeded", 0, 2.0)


def test_held_out_figures_rank_0_publishes_are_mirrored_into_status_evaluation() -> None:
    kube = FakeKube()
    job = make(kube)
    job.reconcile()
    latest = EvaluationPoint(step=40, loss=2.25, perplexity=9.4877)
    best = EvaluationPoint(step=20, loss=2.0, perplexity=7.389)
    published = TrainingProgress(
        step=41, total_steps=100, evaluation=EvaluationStatus(latest=latest, best=best), updated_at=T0
    )
    config_map = kube.objects[("ConfigMap", NS, "tiny-progress")]
    config_map["data"] = {contract.PROGRESS_KEY: published.model_dump_json(by_alias=True, exclude_none=True)}
    kube.add(config_map)
    job.reconcile()
    assert job.status["evaluation"] == {
        "latest": {"step": 40, "loss": 2.25, "perplexity": 9.4877},
        "best": {"step": 20, "loss": 2.0, "perplexity": 7.389},
    }


def test_a_job_failed_by_its_disruption_rule_restarts_as_an_eviction_with_a_warning_event() -> None:
    """The evicted worker's pod is gone; the Job's pod failure policy still says which pod it was."""
    kube = FakeKube()
    job = make(kube)
    job.reconcile()
    add_worker(kube, 0, "Running")
    job.reconcile()
    gang = kube.objects[("Job", NS, "tiny")]
    gang["status"] = {
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": (
                    f"Pod {NS}/tiny-1-x2b7q has condition DisruptionTarget matching FailJob rule at index 0"
                ),
            }
        ]
    }
    del kube.objects[("Pod", NS, "tiny-0-0")]

    job.reconcile()

    assert (job.status["restarts"], job.status["lastRestartReason"]) == (1, "WorkerEvicted")
    (record,) = job.status["failures"]
    assert (record["attempt"], record["reason"], record["pod"]) == (0, "WorkerEvicted", "tiny-1-x2b7q")
    assert record["logs"] == "/o/checkpoints/logs/attempt-0"
    assert record["message"] == (
        "Worker tiny-1-x2b7q was evicted: PodFailurePolicy: Pod ml/tiny-1-x2b7q has condition "
        "DisruptionTarget matching FailJob rule at index 0"
    )
    assert job.events[-1] == ("Warning", "WorkerEvicted")


def test_a_second_failure_with_the_same_reason_still_posts_its_event() -> None:
    kube = FakeKube()
    job = make(kube, backoffLimit=3)
    job.reconcile()
    failed = {
        "containerStatuses": [{"state": {"terminated": {"exitCode": 1, "message": "OSError: disk full"}}}]
    }
    add_worker(kube, 0, "Failed", **failed)
    job.reconcile()
    job.reconcile()  # the old gang goes
    job.reconcile()  # the next one is created, and fails before it ever ran
    add_worker(kube, 0, "Failed", **failed)
    events_before = len(job.events)

    job.reconcile()

    assert job.status["restarts"] == 2
    assert job.events[events_before:] == [("Warning", "WorkerFailed")]
    assert [f["attempt"] for f in job.status["failures"]] == [0, 1]
    assert all(f["message"] == "OSError: disk full" for f in job.status["failures"])


def test_missing_claims_secrets_and_priority_class_hold_the_job_until_they_exist() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(
        kube,
        clock=lambda: now[0],
        dataset={"uri": "pvc://data/train.jsonl"},
        priorityClassName="training-high",
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
        schedulingTimeoutSeconds=60,
    )

    job.reconcile()

    assert ("Job", NS, "tiny") not in kube.objects, "no pod owner while anything it names is missing"
    assert job.status["phase"] == "Pending"
    waiting = next(x for x in job.status["conditions"] if x["type"] == c.COND_REFERENCES_READY)
    assert (waiting["status"], waiting["reason"]) == ("False", c.REASON_REFERENCE_MISSING)
    assert waiting["message"] == (
        "PersistentVolumeClaim data (spec.dataset.uri) does not exist in namespace ml; "
        "Secret creds (spec.env[0].valueFrom.secretKeyRef.name) does not exist in namespace ml; "
        "PriorityClass training-high (spec.priorityClassName) does not exist. "
        "Create them or change the spec; the resource waits and proceeds once everything it names exists."
    )
    assert job.events == [("Warning", c.REASON_REFERENCE_MISSING)]
    assert job.requeue_at is None, "no deadline: the objects' creation wakes the job"

    kube.add_named("v1", "PersistentVolumeClaim", NS, "data")
    kube.add_named("scheduling.k8s.io/v1", "PriorityClass", "", "training-high")
    now[0] = T0 + timedelta(hours=2)  # far past schedulingTimeoutSeconds: waiting is not failing
    job.reconcile()
    assert ("Job", NS, "tiny") not in kube.objects and job.status["phase"] == "Pending"
    still = next(x for x in job.status["conditions"] if x["type"] == c.COND_REFERENCES_READY)
    assert still["message"].startswith("Secret creds (spec.env[0].valueFrom.secretKeyRef.name) does not")

    kube.add_named("v1", "Secret", NS, "creds")
    job.reconcile()

    assert ("Job", NS, "tiny") in kube.objects
    assert job.status["phase"] == "Scheduling"
    assert job.conditions()[c.COND_REFERENCES_READY] == ("True", c.REASON_REFERENCES_FOUND)
    assert ("Normal", c.REASON_REFERENCES_FOUND) in job.events


def test_a_job_whose_references_all_exist_carries_no_references_condition() -> None:
    kube = FakeKube()
    kube.add_named("v1", "PersistentVolumeClaim", NS, "data")
    job = make(kube, dataset={"uri": "pvc://data/train.jsonl"})

    job.reconcile()

    assert ("Job", NS, "tiny") in kube.objects
    assert c.COND_REFERENCES_READY not in job.conditions()


def add_pending_worker(kube: FakeKube, index: int) -> None:
    """A worker pod of the current Job that the scheduler could not place."""
    add_worker(kube, index, "Pending")
    attempt = kube.objects[("Job", NS, "tiny")]["metadata"]["labels"][c.LABEL_RESTART_ATTEMPT]
    pod = kube.objects[("Pod", NS, f"tiny-{index}-{attempt}")]
    del pod["spec"]["nodeName"]
    message = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    pod["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    ]


def drop_pods(kube: FakeKube) -> None:
    """The pods of a deleted Job are gone (the garbage collector's work)."""
    for key in [k for k in kube.objects if k[0] == "Pod"]:
        del kube.objects[key]


def test_a_gang_not_placed_in_time_is_requeued_not_failed_and_created_again_after_its_backoff() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(
        kube,
        clock=lambda: now[0],
        schedulingTimeoutSeconds=60,
        backoffLimit=0,
        requeueBackoffSeconds=30,
        maxRequeueBackoffSeconds=45,
    )
    job.reconcile()
    add_worker(kube, 0, "Running")
    add_pending_worker(kube, 1)
    now[0] = T0 + timedelta(seconds=61)

    job.reconcile()

    retry = now[0] + timedelta(seconds=30)
    assert (job.status["phase"], job.status["requeues"], job.status["restarts"]) == ("Scheduling", 1, 0)
    assert job.status["requeueTime"] == retry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert job.conditions()[c.COND_SCHEDULED] == ("False", c.REASON_GANG_REQUEUED)
    assert job.conditions()[c.COND_UNSCHEDULABLE] == ("True", c.REASON_GANG_REQUEUED)
    assert c.COND_FAILED not in job.conditions(), "backoffLimit 0, yet nothing failed"
    assert job.events[-1] == ("Warning", c.REASON_GANG_REQUEUED)
    assert "4 Insufficient nvidia.com/gpu" in job.messages[-1]
    assert "created again at 2026-11-22T09:01:31Z, in 30s (requeue 1;" in job.messages[-1]
    assert ("Job", NS, "tiny") in kube.objects, "the requeue is written first, the gang goes next pass"
    assert job.requeue_at == now[0]

    job.reconcile()
    assert ("Job", NS, "tiny") not in kube.objects, "released: the placed worker frees its node"
    drop_pods(kube)
    job.reconcile()
    assert ("Job", NS, "tiny") not in kube.objects and job.requeue_at == retry, "backing off"
    assert job.status["phase"] == "Scheduling", "still waiting for nodes: the alert on Scheduling sees it"
    assert job.status["gpus"] == 0

    now[0] = retry
    job.reconcile()
    gang = kube.objects[("Job", NS, "tiny")]
    assert gang["metadata"]["labels"][c.LABEL_RESTART_ATTEMPT] == "0", "the same attempt, not a restart"
    assert "requeueTime" not in job.status and job.status["phase"] == "Scheduling"

    add_pending_worker(kube, 0)
    add_pending_worker(kube, 1)
    now[0] = retry + timedelta(seconds=60)
    job.reconcile()
    assert (job.status["requeues"], job.status["restarts"]) == (2, 0)
    second = now[0] + timedelta(seconds=45)  # 30 s doubled, capped at maxRequeueBackoffSeconds
    assert job.status["requeueTime"] == second.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_with_on_scheduling_timeout_fail_the_job_fails_and_its_gang_goes() -> None:
    kube = FakeKube()
    now = [T0]
    job = make(kube, clock=lambda: now[0], schedulingTimeoutSeconds=60, onSchedulingTimeout="Fail")
    job.reconcile()
    add_worker(kube, 0, "Running")
    add_pending_worker(kube, 1)
    now[0] = T0 + timedelta(seconds=60)

    job.reconcile()

    assert job.status["phase"] == "Failed" and job.status["requeues"] == 0
    assert job.conditions()[c.COND_FAILED] == ("True", c.REASON_SCHEDULING_TIMEOUT)
    job.reconcile()
    assert ("Job", NS, "tiny") not in kube.objects


LOCAL_QUEUES_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "localqueues.kueue.x-k8s.io"},
    "spec": {"versions": [{"name": "v1beta2", "served": True}]},
    "status": {"conditions": [{"type": "Established", "status": "True"}]},
}


def kueue_workload(kube: FakeKube, **conditions: dict[str, str]) -> None:
    """Kueue's Workload of the current worker Job, with these conditions (replacing any earlier one)."""
    gang = kube.objects[("Job", NS, "tiny")]
    kube.objects[("Workload", NS, "job-tiny-5d3a1")] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": "job-tiny-5d3a1",
            "namespace": NS,
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "tiny", "uid": gang["metadata"]["uid"]}
            ],
        },
        "status": {"conditions": [{"type": kind, **cond} for kind, cond in conditions.items()]},
    }


def kueue_sets(kube: FakeKube, *, suspend: bool, started: datetime | None) -> None:
    """What Kueue and the Job controller do to the worker Job on an admission or an eviction."""
    gang = kube.objects[("Job", NS, "tiny")]
    gang["spec"]["suspend"] = suspend
    gang["status"] = {
        "conditions": [{"type": "Suspended", "status": "True" if suspend else "False"}],
        **({"startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ")} if started else {}),
    }


QUOTA = "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor h100"


def test_with_kueue_the_gang_is_admitted_whole_and_a_preempted_gang_waits_to_resume() -> None:
    kube = FakeKube()
    kube.add(copy.deepcopy(LOCAL_QUEUES_CRD))
    now = [T0]
    job = make(kube, clock=lambda: now[0], queueName="gpu", schedulingTimeoutSeconds=60, backoffLimit=0)

    job.reconcile()

    gang = kube.objects[("Job", NS, "tiny")]
    assert gang["spec"]["suspend"] is True and gang["metadata"]["labels"][c.KUEUE_QUEUE_LABEL] == "gpu"
    assert job.status["phase"] == "Pending"
    assert job.conditions()[c.COND_SCHEDULED] == ("False", c.REASON_WAITING_FOR_ADMISSION)
    assert job.requeue_at is None, "waiting in Kueue's queue is no scheduling timeout"

    kueue_workload(kube, QuotaReserved={"status": "False", "reason": "Pending", "message": QUOTA})
    now[0] = T0 + timedelta(hours=1)
    job.reconcile()
    scheduled = next(x for x in job.status["conditions"] if x["type"] == c.COND_SCHEDULED)
    assert (
        scheduled["message"] == f"Waiting for Kueue to admit the workers as a whole (queue 'gpu'): {QUOTA}."
    )

    # Kueue admits the gang an hour after the Job was made: the scheduling timeout counts from then.
    kueue_workload(kube, QuotaReserved={"status": "True", "reason": "QuotaReserved"})
    kueue_sets(kube, suspend=False, started=None)
    job.reconcile()
    assert job.status["phase"] == "Scheduling" and job.requeue_at == now[0] + timedelta(seconds=60)
    kueue_sets(kube, suspend=False, started=now[0])
    add_worker(kube, 0, "Running")
    add_worker(kube, 1, "Running")
    job.reconcile()
    assert job.status["phase"] == "Running"

    # A workload of higher priority preempts it: Kueue suspends the Job, whose controller deletes the pods.
    preempted = (
        "Preempted to accommodate a workload (UID: u2, JobUID: j2) due to prioritization in the ClusterQueue"
    )
    kueue_workload(
        kube,
        QuotaReserved={"status": "False", "reason": "Pending", "message": QUOTA},
        Evicted={"status": "True", "reason": "Preempted", "message": preempted},
    )
    kueue_sets(kube, suspend=True, started=None)
    drop_pods(kube)
    now[0] += timedelta(minutes=5)
    job.reconcile()

    assert (job.status["phase"], job.status["restarts"], job.status["gpus"]) == ("Pending", 0, 0)
    assert job.conditions()[c.COND_SCHEDULED] == ("False", c.REASON_PREEMPTED)
    assert job.conditions()[c.COND_RUNNING] == ("False", c.REASON_PREEMPTED)
    assert c.COND_FAILED not in job.conditions() and job.status["failures"] == []
    assert job.events[-1] == ("Warning", c.REASON_PREEMPTED)
    assert preempted in job.messages[-1]
    assert ("Job", NS, "tiny") in kube.objects and not kube.deletes, "Kueue's to resume, not a restart"

    # Admitted again: the Job controller makes the workers anew, and the runtime resumes.
    kueue_workload(kube, QuotaReserved={"status": "True", "reason": "QuotaReserved"})
    kueue_sets(kube, suspend=False, started=now[0])
    add_worker(kube, 0, "Running")
    add_worker(kube, 1, "Running")
    job.reconcile()
    assert (job.status["phase"], job.status["restarts"]) == ("Running", 0)
    assert job.conditions()[c.COND_RUNNING] == ("True", c.REASON_ALL_WORKERS_RUNNING)
