"""TrainingJob lifecycle against the real control plane: gang timeout (fail-fast), restarts, stall, success,
suspend/resume, TTL and cascading delete, with the operator running as a subprocess."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack.controlplane.cluster import ControlPlane, wait_for
from tests.cluster.conftest import (
    OperatorProcess,
    condition,
    get_training_job,
    wait_for_event,
    wait_for_phase,
    wait_for_training_job,
)
from tests.cluster.drive import finish_workers, publish_progress, running_workers, worker_pods

pytestmark = pytest.mark.cluster


def training_job(name: str, **spec: Any) -> dict[str, Any]:
    resources = spec.pop(
        "resources", {"instanceType": "Standard_NC40adis_H100_v5", "nodes": 1, "gpusPerNode": 1}
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "/models/tiny"},
            "dataset": {"uri": "/data/tiny.jsonl"},
            "output": {"uri": "az://out/tiny"},
            "resources": resources,
            **spec,
        },
    }


def create(custom: client.CustomObjectsApi, namespace: str, manifest: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", manifest)


def patch_spec(custom: client.CustomObjectsApi, namespace: str, name: str, **spec: Any) -> None:
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", name, {"spec": spec})


def jobs_of(batch: client.BatchV1Api, namespace: str, name: str) -> list[Any]:
    return batch.list_namespaced_job(namespace, label_selector=f"modelfleet.io/trainingjob={name}").items


def test_with_fail_on_timeout_an_impossible_gang_fails_with_the_schedulers_reason_and_frees_the_nodes(
    operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi, batch: client.BatchV1Api
) -> None:
    """The fail-fast choice; by default such a gang is requeued (``test_trainingjob_requeue.py``)."""
    five_nd96 = {"instanceType": "Standard_ND96isr_H100_v5", "nodes": 5, "gpusPerNode": 8}
    manifest = training_job(
        "too-big", resources=five_nd96, schedulingTimeoutSeconds=3, onSchedulingTimeout="Fail"
    )
    create(custom, namespace, manifest)

    failed = wait_for_phase(custom, namespace, "too-big", "Failed", timeout=60)

    scheduled, failure = condition(failed, "Scheduled"), condition(failed, "Failed")
    unschedulable = condition(failed, "Unschedulable")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "SchedulingTimeout")
    assert (unschedulable["status"], unschedulable["reason"]) == ("True", "SchedulingTimeout")
    assert "Insufficient nvidia.com/gpu" in unschedulable["message"]
    assert failure["reason"] == "SchedulingTimeout"
    assert "Insufficient nvidia.com/gpu" in failure["message"]
    assert "Standard_ND96isr_H100_v5" in failure["message"]
    assert failed["status"]["completionTime"]
    wait_for(lambda: not jobs_of(batch, namespace, "too-big"), 30, "the half-placed gang's Job to be deleted")


def test_worker_failure_restarts_the_gang_until_the_backoff_limit(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    two_nc40 = {"instanceType": "Standard_NC40adis_H100_v5", "nodes": 2, "gpusPerNode": 1}
    create(custom, namespace, training_job("flaky", resources=two_nc40, backoffLimit=1))
    wait_for_phase(custom, namespace, "flaky", "Running")

    [failed_pod] = finish_workers(
        core, namespace, "flaky", succeeded=False, only_rank=1, exit_code=137, message="NCCL watchdog timeout"
    )

    restarted = wait_for_training_job(
        custom,
        namespace,
        "flaky",
        lambda tj: tj["status"].get("restarts") == 1 and tj["status"].get("phase") == "Running",
        "the second attempt running",
    )
    assert restarted["status"]["lastRestartReason"] == "WorkerFailed"
    assert condition(restarted, "Running")["reason"] == "AllWorkersRunning"
    pods = running_workers(core, namespace, "flaky", 2)
    assert {p.metadata.labels["modelfleet.io/restart-attempt"] for p in pods} == {"1"}
    assert all(
        e.value == "1"
        for p in pods
        for e in p.spec.containers[0].env
        if e.name == "MODELFLEET_RESTART_ATTEMPT"
    )
    assert failed_pod not in {p.metadata.name for p in pods}

    [last_failed] = finish_workers(
        core,
        namespace,
        "flaky",
        succeeded=False,
        only_rank=0,
        message="ValueError: dataset.fields.prompt: no column 'prompt' (rank 0)\nexit code 1",
    )

    failed = wait_for_phase(custom, namespace, "flaky", "Failed")
    failure = condition(failed, "Failed")
    assert failure["reason"] == "BackoffLimitExceeded"
    assert "Gave up after 1 restart(s) (spec.backoffLimit 1)" in failure["message"]
    assert "exit code 1 (Error)" in failure["message"]
    assert "ValueError: dataset.fields.prompt: no column 'prompt'" in failure["message"]
    assert condition(failed, "Running")["reason"] == "WorkerFailed"
    # both attempts' failures, each with its worker's own termination message
    first, last = failed["status"]["failures"]
    assert (first["attempt"], first["pod"], first["exitCode"], first["message"]) == (
        0,
        failed_pod,
        137,
        "NCCL watchdog timeout",
    )
    assert (last["attempt"], last["pod"], last["reason"]) == (1, last_failed, "WorkerFailed")
    assert last["message"].startswith("ValueError: dataset.fields.prompt")
    assert last["logs"] == "az://out/tiny/checkpoints/logs/attempt-1"
    # the event carries the message too
    wait_for_event(core, namespace, "flaky", "WorkerFailed", "no column 'prompt'")

    # The failed worker is kept (its logs stay readable); the Job controller stopped the other one, so
    # no pod holds a GPU.
    def only_the_failed_worker_left() -> bool:
        pods = worker_pods(core, namespace, "flaky")
        return [p.metadata.name for p in pods] == [last_failed] and pods[0].status.phase == "Failed"

    wait_for(
        only_the_failed_worker_left, 30, "the other worker of the last gang stopped, the failed one kept"
    )
    assert jobs_of(batch, namespace, "flaky")


def test_stalled_gang_is_restarted_with_a_stand_in_runtime(
    operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    """A gang whose progress stops is restarted with the reason Stalled. The test stands in for the training
    runtime: nothing runs in the kwok pods, so it publishes rank 0's progress itself (made-up figures,
    ``tests.cluster.drive``); the e2e tier runs the real runtime."""
    create(custom, namespace, training_job("stuck", stallTimeoutSeconds=3, backoffLimit=1))
    wait_for_phase(custom, namespace, "stuck", "Running")
    publish_progress(core, namespace, "stuck", step=5, total_steps=100, loss=2.0)

    restarted = wait_for_training_job(
        custom, namespace, "stuck", lambda tj: tj["status"].get("restarts") == 1, "a restart after the stall"
    )

    assert restarted["status"]["lastRestartReason"] == "Stalled"
    assert "no new progress was reported" in condition(restarted, "Running")["message"]


def test_success_mirrors_progress_and_records_completion_with_a_stand_in_runtime(
    cluster: ControlPlane,
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    """Progress is mirrored into the status, and success records the completion. The test stands in for the
    training runtime: nothing runs in the kwok pods, so it publishes rank 0's progress itself (made-up
    figures, ``tests.cluster.drive``); the e2e tier runs the real runtime."""
    two_nd96 = {"instanceType": "Standard_ND96isr_H100_v5", "nodes": 2, "gpusPerNode": 8}
    create(custom, namespace, training_job("good", resources=two_nd96))
    wait_for_phase(custom, namespace, "good", "Running")

    publish_progress(core, namespace, "good", step=40, total_steps=100, loss=1.5, last_checkpoint="/ckpt/40")
    mirrored = wait_for_training_job(
        custom,
        namespace,
        "good",
        lambda tj: tj["status"].get("steps") == "40/100",
        "progress 40/100 mirrored",
    )
    assert mirrored["status"]["progress"]["loss"] == 1.5
    assert mirrored["status"]["progress"]["lastCheckpoint"] == "/ckpt/40"
    row = cluster.kubectl("get", "tj", "good", "-n", namespace, "--no-headers").stdout.split()
    assert row[1:6] == ["Running", "2/2", "16", "40/100", "1.5"]

    publish_progress(core, namespace, "good", step=100, total_steps=100, loss=1.1)
    # The operator's passes tell time in whole seconds (common.reconcile.utcnow): GPUs held and let go
    # within one second add 0 GPU-hours, so they are held past the next second.
    time.sleep(2)
    finish_workers(core, namespace, "good", succeeded=True)

    done = wait_for_phase(custom, namespace, "good", "Succeeded")
    status = done["status"]
    assert condition(done, "Complete")["reason"] == "TrainingSucceeded"
    assert status["completionTime"] and status["startTime"]
    assert (status["steps"], status["progress"]["loss"], status["gpus"], status["workers"]) == (
        "100/100",
        1.1,
        0,
        "0/2",
    )
    assert status["gpuHours"] > 0
    assert status["observedGeneration"] == done["metadata"]["generation"]


def test_suspend_deletes_the_workers_and_resume_recreates_them(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    create(custom, namespace, training_job("pausable"))
    wait_for_phase(custom, namespace, "pausable", "Running")

    patch_spec(custom, namespace, "pausable", suspend=True)
    suspended = wait_for_phase(custom, namespace, "pausable", "Suspended")
    assert condition(suspended, "Suspended")["reason"] == "SuspendedByUser"
    wait_for(
        lambda: not jobs_of(batch, namespace, "pausable") and not worker_pods(core, namespace, "pausable"),
        30,
        "the workers of the suspended job to be gone",
    )

    patch_spec(custom, namespace, "pausable", suspend=False)
    resumed = wait_for_phase(custom, namespace, "pausable", "Running")
    assert condition(resumed, "Suspended")["reason"] == "Resumed"
    assert resumed["status"]["restarts"] == 0
    assert len(jobs_of(batch, namespace, "pausable")) == 1


def test_ttl_deletes_a_finished_job_and_delete_cascades_to_children(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    create(custom, namespace, training_job("short-lived", ttlSecondsAfterFinished=2))
    running = wait_for_phase(custom, namespace, "short-lived", "Running")
    assert not running["metadata"].get("finalizers"), "nothing holds a deletion (kopf_fixes.daemon_finalizer)"
    finish_workers(core, namespace, "short-lived", succeeded=True)
    wait_for_phase(custom, namespace, "short-lived", "Succeeded")

    wait_for(
        lambda: get_training_job(custom, namespace, "short-lived") is None, 30, "the TTL to delete the job"
    )

    def children_gone() -> bool:
        selector = "modelfleet.io/trainingjob=short-lived"
        return not (
            jobs_of(batch, namespace, "short-lived")
            or core.list_namespaced_config_map(namespace, label_selector=selector).items
            or core.list_namespaced_service(namespace, label_selector=selector).items
            or core.list_namespaced_service_account(namespace, label_selector=selector).items
        )

    wait_for(children_gone, 30, "garbage collection of the children")
