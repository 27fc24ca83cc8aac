"""Stand in for the training runtime and the kubelet: publish rank 0's progress, finish pods.

Used by the cluster tests only, on the kwok-only test plane where nothing runs inside the fake pods:
the progress these functions publish is made up by the test, never measured (the e2e tier and
``make demo`` run the real runtime on the real node instead).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from modelfleet_api import constants, contract
from modelfleet_api.runtime_config import TrainingProgress

from hack.controlplane.cluster import wait_for
from hack.controlplane.kwok import finish_pod


def worker_pods(core: client.CoreV1Api, namespace: str, name: str) -> list[Any]:
    """The live worker pods of a TrainingJob (every attempt), ordered by completion index."""
    selector = (
        f"{constants.LABEL_TRAINING_JOB}={name},{constants.LABEL_COMPONENT}={constants.COMPONENT_WORKER}"
    )
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    live = [p for p in pods if p.metadata.deletion_timestamp is None]
    return sorted(
        live, key=lambda p: int(p.metadata.labels.get("batch.kubernetes.io/job-completion-index", 0))
    )


def running_workers(
    core: client.CoreV1Api, namespace: str, name: str, nodes: int, timeout: float = 60
) -> list[Any]:
    """Waits until ``nodes`` workers run, and returns them."""
    found: list[Any] = []

    def all_running() -> bool:
        nonlocal found
        found = [p for p in worker_pods(core, namespace, name) if p.status.phase == "Running"]
        return len(found) == nodes

    try:
        wait_for(all_running, timeout, f"{nodes} running workers of TrainingJob {namespace}/{name}")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{pods_and_events(core, namespace)}") from None
    return found


def pods_and_events(core: client.CoreV1Api, namespace: str) -> str:
    """What a test that waited in vain for pods prints: every pod's phase, node and conditions, and the
    namespace's events (the scheduler's and the Job controller's reasons)."""
    lines = ["pods:"]
    for pod in core.list_namespaced_pod(namespace).items:
        conditions = ", ".join(
            f"{x.type}={x.status}{f' ({x.reason}: {x.message})' if x.reason else ''}"
            for x in pod.status.conditions or []
        )
        lines.append(f"  {pod.metadata.name}: {pod.status.phase} on {pod.spec.node_name}; {conditions}")
    lines.append("events:")
    for event in core.list_namespaced_event(namespace).items:
        involved = f"{event.involved_object.kind}/{event.involved_object.name}"
        lines.append(f"  {event.type} {event.reason} {involved}: {event.message}")
    return "\n".join(lines)


def publish_progress(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    *,
    step: int,
    total_steps: int | None = None,
    loss: float | None = None,
    tokens_per_second: float | None = None,
    last_checkpoint: str | None = None,
) -> TrainingProgress:
    """Writes progress into the job's progress ConfigMap exactly as rank 0 does."""
    progress = TrainingProgress(
        step=step,
        total_steps=total_steps,
        loss=loss,
        tokens_per_second=tokens_per_second,
        last_checkpoint=last_checkpoint,
        last_checkpoint_step=step if last_checkpoint else None,
        updated_at=datetime.now(UTC),
    )
    core.patch_namespaced_config_map(
        f"{name}-progress",
        namespace,
        {"data": {contract.PROGRESS_KEY: progress.model_dump_json(by_alias=True)}},
    )
    return progress


def finish_workers(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    *,
    succeeded: bool = True,
    only_rank: int | None = None,
    exit_code: int | None = None,
    message: str = "",
) -> list[str]:
    """Ends the running workers (or only the one of ``only_rank``) as their kubelet would; their names."""
    finished = []
    for index, pod in enumerate(worker_pods(core, namespace, name)):
        if pod.status.phase != "Running" or (only_rank is not None and index != only_rank):
            continue
        finish_pod(
            core, namespace, pod.metadata.name, succeeded=succeeded, exit_code=exit_code, message=message
        )
        finished.append(pod.metadata.name)
    return finished


def run_to_success(
    core: client.CoreV1Api, namespace: str, name: str, *, nodes: int, total_steps: int = 100
) -> None:
    """The demo's happy path: wait for the gang, report a few steps with a falling loss, finish."""
    running_workers(core, namespace, name, nodes)
    for step, loss in ((total_steps // 4, 2.1), (total_steps // 2, 1.6), (total_steps, 1.2)):
        publish_progress(core, namespace, name, step=step, total_steps=total_steps, loss=loss)
    finish_workers(core, namespace, name, succeeded=True)
