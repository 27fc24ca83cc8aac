"""The TrainingJob policies, each alone: gang, failure/backoff, stall, success, TTL, GPU-hours, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_operator.training.policies.failure import decide_restart
from modelfleet_operator.training.policies.gang import gang_verdict
from modelfleet_operator.training.policies.gpu_hours import GpuAccount, account
from modelfleet_operator.training.policies.progress import read_progress, steps_column
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
        "1/2 workers found a Standard_ND96isr_H100_v5 node within 60s, so the workers were deleted. "
        f"The scheduler says: {INSUFFICIENT} Free or add Standard_ND96isr_H100_v5 nodes, or lower "
        "resources.nodes or resources.gpusPerNode, then recreate the TrainingJob."
    )


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
