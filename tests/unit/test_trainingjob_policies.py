"""The TrainingJob policies, each alone: gang, failure/backoff, stall, success, TTL, GPU-hours, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import MAX_FAILURES_KEPT, TrainingJobSpec
from modelfleet_operator.training.policies.failure import decide_restart, record_failure
from modelfleet_operator.training.policies.gang import failed_message, gang_verdict
from modelfleet_operator.training.policies.gpu_hours import GpuAccount, account
from modelfleet_operator.training.policies.grace import grace_period, torchrun_shutdown_seconds
from modelfleet_operator.training.policies.kueue import kueue_hold
from modelfleet_operator.training.policies.progress import read_progress, steps_column
from modelfleet_operator.training.policies.requeue import backoff_seconds, requeue
from modelfleet_operator.training.policies.stall import stall_message
from modelfleet_operator.training.policies.success import all_workers_succeeded
from modelfleet_operator.training.policies.ttl import ttl_expired
from modelfleet_operator.training.workers import summarize

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
INSUFFICIENT = "0/9 nodes are available: 9 Insufficient nvidia.com/gpu. preemption: 0/9 nodes are available."


def pod(name: str, phase: str, *, node: str | None = None, index: int = 0, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, **status},
    }


READY = {"conditions": [{"type": "Ready", "status": "True"}]}
UNSCHEDULABLE = {
    "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": INSUFFICIENT}
    ]
}


def test_summary_counts_scheduled_running_ready_and_succeeded_indexes() -> None:
    summary = summarize(
        [
            pod("w-0", "Running", node="n1", index=0, **READY),
            pod("w-1", "Pending", node="n2", index=1),
            pod("w-2", "Pending", index=2, **UNSCHEDULABLE),
            pod("w-3", "Succeeded", node="n3", index=3),
        ]
    )
    assert (summary.pods, summary.scheduled, summary.running, summary.ready) == (4, 2, 1, 1)
    assert summary.succeeded_indexes == {3}
    assert summary.unschedulable_message == INSUFFICIENT
    assert summary.failure is None


def test_summary_ignores_pods_being_deleted() -> None:
    leaving = pod("w-0", "Running", node="n1", **READY)
    leaving["metadata"]["deletionTimestamp"] = "2026-11-22T09:00:00Z"
    assert summarize([leaving]).pods == 0


def test_failure_names_the_pod_exit_code_and_message() -> None:
    failed = pod(
        "w-1",
        "Failed",
        node="n1",
        containerStatuses=[
            {"state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "CUDA error: ECC"}}}
        ],
    )
    failure = summarize([failed]).failure
    assert failure is not None
    assert (failure.pod, failure.evicted, failure.detail) == (
        "w-1",
        False,
        "exit code 1 (Error): CUDA error: ECC",
    )


def test_eviction_is_told_apart_from_a_crash() -> None:
    evicted = pod(
        "w-0",
        "Failed",
        node="n1",
        reason="Evicted",
        message="The node was low on resource: memory.",
        conditions=[{"type": "DisruptionTarget", "status": "True", "message": "spot VM reclaimed"}],
    )
    failure = summarize([evicted]).failure
    assert failure is not None
    assert failure.evicted
    assert failure.detail == "Evicted: spot VM reclaimed: The node was low on resource: memory."


def gang(pods: list[dict[str, Any]], waited: int, timeout: int = 60) -> Any:
    return gang_verdict(
        summarize(pods),
        nodes=2,
        placement="Standard_ND96isr_H100_v5",
        waiting_since=T0,
        now=T0 + timedelta(seconds=waited),
        timeout_seconds=timeout,
    )


def test_gang_is_placed_when_every_worker_has_a_node_or_finished() -> None:
    verdict = gang([pod("w-0", "Running", node="n1"), pod("w-1", "Succeeded", node="n2", index=1)], 5)
    assert verdict.all_scheduled and not verdict.timed_out and not verdict.unschedulable


def test_gang_waits_with_the_scheduler_reason_until_the_timeout() -> None:
    pods = [pod("w-0", "Running", node="n1"), pod("w-1", "Pending", index=1, **UNSCHEDULABLE)]
    waiting = gang(pods, 30)
    assert not waiting.all_scheduled and not waiting.timed_out and waiting.unschedulable
    assert waiting.message == (
        "1/2 workers have a Standard_ND96isr_H100_v5 node; the gang gives up after 60s. "
        f"The scheduler says: {INSUFFICIENT}"
    )
    expired = gang(pods, 60)
    assert expired.timed_out
    assert expired.message == (
        f"1/2 workers found a Standard_ND96isr_H100_v5 node within 60s. The scheduler says: {INSUFFICIENT}"
    )
    assert failed_message(expired, "Standard_ND96isr_H100_v5") == (
        f"{expired.message} The workers were deleted so that none holds a node, and the job failed "
        "(spec.onSchedulingTimeout Fail). To run it, free or add Standard_ND96isr_H100_v5 nodes, or lower "
        "resources.nodes or resources.gpusPerNode, then recreate the TrainingJob."
    )


def test_requeue_backoff_doubles_from_the_base_and_stops_at_the_maximum() -> None:
    waits = [backoff_seconds(n, base_seconds=60, max_seconds=3600) for n in range(1, 9)]
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_seconds(10**6, base_seconds=1, max_seconds=86_400) == 86_400
    assert backoff_seconds(1, base_seconds=90, max_seconds=90) == 90


def test_a_timed_out_gang_is_requeued_with_the_schedulers_reason_and_when_it_retries() -> None:
    expired = gang([pod("w-0", "Running", node="n1"), pod("w-1", "Pending", index=1, **UNSCHEDULABLE)], 60)
    now = T0 + timedelta(seconds=60)

    third = requeue(expired, requeues=2, now=now, base_seconds=60, max_seconds=3600, placement="pool-a")

    assert (third.requeues, third.retry_at) == (3, now + timedelta(seconds=240))
    assert third.message == (
        f"{expired.message} The gang was released (its workers deleted, so none holds a node) and is "
        "created again at 2026-11-22T09:05:00Z, in 240s (requeue 3; the wait starts at "
        "spec.requeueBackoffSeconds and doubles with each requeue, up to spec.maxRequeueBackoffSeconds). "
        "Requeues do not count against spec.backoffLimit. To place it sooner, free or add pool-a nodes, or "
        "lower resources.nodes or resources.gpusPerNode; to fail instead, set spec.onSchedulingTimeout: Fail."
    )


def workload(**conditions: dict[str, str]) -> dict[str, Any]:
    """Kueue's Workload as the operator indexes it (``indexes.workload_keys``)."""
    return {
        "metadata": {"name": "job-tiny-1a2b3"},
        "status": {"conditions": [{"type": kind, **cond} for kind, cond in conditions.items()]},
    }


QUOTA = "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor h100"


def test_a_gang_kueue_has_not_admitted_waits_with_kueues_reason() -> None:
    unseen = kueue_hold(None, queue="gpu")
    assert (unseen.reason, unseen.evicted) == ("WaitingForAdmission", False)
    assert unseen.message == "Waiting for Kueue to admit the workers as a whole (queue 'gpu')."
    queued = kueue_hold(
        workload(QuotaReserved={"status": "False", "reason": "Pending", "message": QUOTA}), queue="gpu"
    )
    assert (queued.reason, queued.evicted) == ("WaitingForAdmission", False)
    assert queued.message == f"Waiting for Kueue to admit the workers as a whole (queue 'gpu'): {QUOTA}."


def test_a_gang_kueue_preempted_says_so_and_that_it_resumes_when_admitted_again() -> None:
    preempted = kueue_hold(
        workload(
            QuotaReserved={"status": "False", "reason": "Pending", "message": QUOTA},
            Evicted={
                "status": "True",
                "reason": "Preempted",
                "message": "Preempted to accommodate a workload (UID: u2, JobUID: j2) due to prioritization "
                "in the ClusterQueue",
            },
        ),
        queue="gpu",
    )
    assert (preempted.reason, preempted.evicted) == ("Preempted", True)
    assert preempted.message == (
        "Kueue evicted the gang from queue 'gpu' (Preempted: Preempted to accommodate a workload (UID: u2, "
        "JobUID: j2) due to prioritization in the ClusterQueue) and suspended its Job: the workers were told "
        "to stop and save a checkpoint in their grace period. The gang resumes from the latest checkpoint "
        f"when Kueue admits it again (Kueue: {QUOTA}); this does not count against spec.backoffLimit."
    )
    stopped = kueue_hold(workload(Evicted={"status": "True", "reason": "ClusterQueueStopped"}), queue=None)
    assert (stopped.reason, stopped.evicted) == ("EvictedByKueue", True)
    assert stopped.message.startswith("Kueue evicted the gang (ClusterQueueStopped) and suspended its Job")
    readmitted = kueue_hold(
        workload(Evicted={"status": "False", "reason": "QuotaReserved", "message": "Previously: ..."}),
        queue="gpu",
    )
    assert (readmitted.reason, readmitted.evicted) == ("WaitingForAdmission", False)


def test_gang_not_yet_tried_by_the_scheduler_is_not_unschedulable() -> None:
    verdict = gang([pod("w-0", "Running", node="n1"), pod("w-1", "Pending", index=1)], 5)
    assert not verdict.all_scheduled and not verdict.unschedulable


def test_gang_timeout_zero_waits_forever() -> None:
    assert not gang([pod("w-0", "Pending", **UNSCHEDULABLE)], 10**6, timeout=0).timed_out


def test_restarts_until_the_backoff_limit_then_gives_up() -> None:
    first = decide_restart("WorkerFailed", "Worker w-0 failed: exit code 1", restarts=0, backoff_limit=2)
    assert (first.restart, first.reason) == (True, "WorkerFailed")
    assert first.message == (
        "Worker w-0 failed: exit code 1. Restarting the gang from the latest checkpoint "
        "(restart 1 of at most 2)."
    )
    last = decide_restart("Stalled", "no progress", restarts=2, backoff_limit=2)
    assert (last.restart, last.reason) == (False, "BackoffLimitExceeded")
    assert last.message.startswith("no progress. Gave up after 2 restart(s) (spec.backoffLimit 2).")
    assert not decide_restart("WorkerFailed", "x", restarts=0, backoff_limit=0).restart


def test_stall_counts_from_the_later_of_gang_start_and_last_progress() -> None:
    def stalled(progress_at: datetime | None, now_offset: int) -> str | None:
        return stall_message(
            last_progress_at=progress_at,
            running_since=T0,
            now=T0 + timedelta(seconds=now_offset),
            timeout_seconds=100,
        )

    assert stalled(None, 99) is None
    assert stalled(None, 100) == (
        "Every worker runs but no progress was reported for 100s (spec.stallTimeoutSeconds 100)"
    )
    assert stalled(T0 + timedelta(seconds=50), 120) is None
    # progress from an earlier attempt (before this gang started) does not extend the deadline
    assert stalled(T0 - timedelta(hours=1), 100) is not None
    assert (
        stall_message(last_progress_at=None, running_since=T0, now=T0 + timedelta(days=9), timeout_seconds=0)
        is None
    )


def test_success_needs_every_index_or_the_jobs_complete_condition() -> None:
    one_done = summarize([pod("w-0", "Succeeded", index=0), pod("w-1", "Running", node="n", index=1)])
    assert not all_workers_succeeded(one_done, {"status": {}}, nodes=2)
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert all_workers_succeeded(one_done, complete, nodes=2)
    both = summarize([pod("w-0", "Succeeded", index=0), pod("w-1", "Succeeded", index=1)])
    assert all_workers_succeeded(both, {"status": {}}, nodes=2)


def test_ttl_after_finished() -> None:
    assert not ttl_expired(completion_time=T0, ttl_seconds=None, now=T0 + timedelta(days=1))
    assert not ttl_expired(completion_time=None, ttl_seconds=0, now=T0)
    assert not ttl_expired(completion_time=T0, ttl_seconds=60, now=T0 + timedelta(seconds=59))
    assert ttl_expired(completion_time=T0, ttl_seconds=60, now=T0 + timedelta(seconds=60))


def test_gpu_hours_accrue_over_attempts_and_write_at_most_once_a_minute() -> None:
    idle = GpuAccount(gpu_hours=0.0, gpus=0, updated_at=None)
    started = account(idle, gpus_now=16, now=T0)
    assert started == GpuAccount(gpu_hours=0.0, gpus=16, updated_at=T0)
    assert account(started, gpus_now=16, now=T0 + timedelta(seconds=30)) is started
    hour = account(started, gpus_now=16, now=T0 + timedelta(hours=1))
    assert hour == GpuAccount(gpu_hours=16.0, gpus=16, updated_at=T0 + timedelta(hours=1))
    # the gang stops (restart) 15 minutes later: the interval is billed and the clock stops
    stopped = account(hour, gpus_now=0, now=T0 + timedelta(hours=1, minutes=15))
    assert stopped == GpuAccount(gpu_hours=20.0, gpus=0, updated_at=None)
    # the next attempt adds to the same total
    again = account(
        account(stopped, gpus_now=16, now=T0 + timedelta(hours=2)),
        gpus_now=0,
        now=T0 + timedelta(hours=2, minutes=30),
    )
    assert again.gpu_hours == 28.0


def test_progress_is_read_from_the_config_map_and_garbage_ignored() -> None:
    data = '{"step": 120, "totalSteps": 1000, "loss": 1.25, "updatedAt": "2026-11-22T09:00:00Z"}'
    progress = read_progress({"metadata": {"name": "p"}, "data": {"progress": data}})
    assert progress is not None
    assert (progress.step, progress.loss, progress.updated_at) == (120, 1.25, T0)
    assert steps_column(progress) == "120/1000"
    assert read_progress({"metadata": {"name": "p"}, "data": {"progress": "{not json"}}) is None
    assert read_progress({"metadata": {"name": "p"}}) is None
    assert read_progress(None) is None


def test_a_worker_being_evicted_is_a_failure_before_it_has_stopped() -> None:
    leaving = pod("w-1", "Running", node="n2", index=1, **READY)
    leaving["metadata"]["deletionTimestamp"] = "2026-11-22T09:00:00Z"
    leaving["status"]["conditions"] = [
        *READY["conditions"],
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        },
    ]
    summary = summarize([pod("w-0", "Running", node="n1", **READY), leaving])
    assert summary.failure is not None
    assert (summary.failure.pod, summary.failure.node, summary.failure.evicted) == ("w-1", "n2", True)
    assert summary.failure.detail == (
        "EvictionByEvictionAPI (Eviction API: evicting): it was told to stop and saves a checkpoint in its "
        "grace period"
    )
    assert (summary.pods, summary.scheduled) == (1, 1)


def test_a_failed_worker_keeps_its_node_exit_code_and_whole_termination_message() -> None:
    message = "RuntimeError: CUDA out of memory (rank 3)\n--- last log lines ---\nstep 41/100 loss 1.9"
    failed = pod(
        "w-0",
        "Failed",
        node="n1",
        containerStatuses=[
            {
                "state": {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "message": message,
                        "finishedAt": "2026-11-22T09:01:00Z",
                    }
                }
            }
        ],
    )
    failure = summarize([failed]).failure
    assert failure is not None
    assert (failure.node, failure.exit_code, failure.message, failure.finished_at) == (
        "n1",
        1,
        message,
        "2026-11-22T09:01:00Z",
    )


def test_failures_keep_the_workers_own_message_and_only_the_latest_attempts() -> None:
    worker = summarize(
        [
            pod(
                "w-0",
                "Failed",
                node="n1",
                containerStatuses=[{"state": {"terminated": {"exitCode": 1, "message": "ValueError: bad"}}}],
            )
        ]
    ).failure
    failures: list[Any] = []
    for attempt in range(MAX_FAILURES_KEPT + 2):
        failures = record_failure(
            failures,
            attempt=attempt,
            cause="WorkerFailed",
            detail="Worker w-0 failed: exit code 1 (Error): ValueError: bad",
            worker=worker,
            logs=f"az://out/checkpoints/logs/attempt-{attempt}",
            now=T0,
        )
    assert [f.attempt for f in failures] == list(range(2, MAX_FAILURES_KEPT + 2))
    last = failures[-1]
    assert (last.pod, last.node, last.exit_code, last.message) == ("w-0", "n1", 1, "ValueError: bad")
    stall = record_failure(
        [], attempt=0, cause="Stalled", detail="no progress for 30 min", worker=None, logs=None, now=T0
    )
    assert (stall[0].pod, stall[0].message) == (None, "no progress for 30 min")


def grace_spec(**resources: Any) -> TrainingJobSpec:
    strategy = resources.pop("strategy", {})
    grace = resources.pop("grace", None)
    body: dict[str, Any] = {
        "model": {"uri": "/m"},
        "dataset": {"uri": "/d"},
        "output": {"uri": "az://out/x"},
        "resources": resources,
        "strategy": strategy,
    }
    if grace is not None:
        body["terminationGracePeriodSeconds"] = grace
    return TrainingJobSpec.model_validate(body)


def progress(checkpoint: float | None, step: float | None) -> TrainingProgress:
    return TrainingProgress(step=10, checkpoint_seconds=checkpoint, step_seconds=step, updated_at=T0)


@pytest.mark.parametrize(
    ("resources", "seconds"),
    [
        # 8 x 80 GiB written at 80,000 Mbps: 68.7 s, twice, + 30 s
        ({"instanceType": "Standard_ND96isr_H100_v5", "gpusPerNode": 8}, 168),
        # 8 x 80 GiB at the A100 v4's 24,000 Mbps: 229 s
        ({"instanceType": "Standard_ND96amsr_A100_v4", "gpusPerNode": 8}, 489),
        # the optimizer offloaded: the VM's 1900 GiB, not its GPUs' memory
        (
            {
                "instanceType": "Standard_ND96isr_H100_v5",
                "gpusPerNode": 8,
                "strategy": {"type": "deepspeed", "zeroStage": 3, "cpuOffload": "optimizer"},
            },
            439,
        ),
        # one of two GPUs: 94 GiB at 80,000 Mbps
        ({"instanceType": "Standard_NC80adis_H100_v5", "gpusPerNode": 1}, 51),
        # a CPU size: the VM's 8 GiB at 12,500 Mbps
        ({"instanceType": "Standard_D2s_v5", "gpusPerNode": 0}, 41),
    ],
)  # fmt: skip
def test_grace_period_bounds_the_save_of_the_nodes_state_at_the_vms_bandwidth(
    resources: dict[str, Any], seconds: int
) -> None:
    assert grace_period(grace_spec(**resources), None).seconds == seconds


def test_a_measured_checkpoint_lengthens_the_grace_period_and_never_shortens_it() -> None:
    nc40 = grace_spec(instanceType="Standard_NC40adis_H100_v5", gpusPerNode=1)
    assert grace_period(nc40, None).seconds == 71
    slow = grace_period(nc40, progress(checkpoint=240.0, step=6.0))
    assert slow.seconds == 2 * 246 + 30
    assert "measured 240 s checkpoint save" in slow.basis
    assert grace_period(nc40, progress(checkpoint=2.0, step=1.0)).seconds == 71
    assert grace_period(nc40, progress(checkpoint=5000.0, step=1.0)).seconds == 3600


def test_the_spec_grace_period_wins_and_torchrun_waits_almost_as_long() -> None:
    chosen = grace_period(grace_spec(grace=900), progress(checkpoint=2000.0, step=1.0))
    assert (chosen.seconds, chosen.basis) == (900, "spec.terminationGracePeriodSeconds")
    assert torchrun_shutdown_seconds(900) == 895
