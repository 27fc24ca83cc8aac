"""A node drained under a TrainingJob (what AKS node auto-drain or a node-termination handler does on an
Azure Scheduled Event: cordon, then evict every pod through the Eviction API): the worker gets the
job's termination grace period, the gang restarts on another node and the next attempt resumes.

kwok plays the kubelet here, and nothing runs in the worker: kwok stops an evicted pod as a kubelet
does once its processes exited after the SIGTERM (exit code 143, phase Failed), standing in for the
runtime's checkpoint, and the test checks only what the operator and Kubernetes do. That SIGTERM really
leads to a checkpoint and the next attempt resumes from it is the runtime tier's test
(``tests/runtime/test_train_supervise.py``, ``tests/runtime/test_train_ddp.py``) and the e2e tier's on
the real node.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.controlplane.kwok import POOLS, Pool, node_manifest
from tests.cluster.conftest import OperatorProcess, condition, wait_for_training_job
from tests.cluster.drive import worker_pods

pytestmark = pytest.mark.cluster

GRACE_SECONDS = 300


@dataclass(frozen=True)
class TwoNodePool:
    name: str
    nodes: tuple[str, str]


@pytest.fixture
def pool(core: client.CoreV1Api) -> Iterator[TwoNodePool]:
    """Two kwok ND96 nodes in a pool of this test's own, so the restarted worker has exactly one
    other place to go."""
    nd96 = POOLS["nd96h100"]
    shaped = Pool(f"dr{uuid.uuid4().hex[:6]}", nd96.instance_type, nd96.gpus, nd96.cpus, nd96.memory_gi, 2)
    names = (shaped.node_name(0), shaped.node_name(1))
    for name in names:
        node = node_manifest(shaped, name)
        core.create_node(node)
        core.patch_node_status(name, {"status": node["status"]})  # the create drops status
    try:
        yield TwoNodePool(shaped.name, names)
    finally:
        # The test's TrainingJob goes first: a pod left on a deleted node would never finish.
        def pods_on_pool() -> list[Any]:
            return [
                pod
                for name in names
                for pod in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items
            ]

        wait_for(lambda: not pods_on_pool(), 60, f"the pods on pool {shaped.name} to be gone")
        for name in names:
            core.delete_node(name)


def training_job(name: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "meta-llama/Llama-3.1-8B"},
            "dataset": {"uri": "az://data/chat.jsonl"},
            "output": {"uri": "az://out/drained"},
            "resources": {
                "instanceType": "Standard_ND96isr_H100_v5",
                "nodePool": pool,
                "nodes": 1,
                "gpusPerNode": 8,
            },
            "terminationGracePeriodSeconds": GRACE_SECONDS,
            "backoffLimit": 2,
        },
    }


def env_of(pod: Any) -> dict[str, str]:
    return {e.name: e.value for e in pod.spec.containers[0].env if e.value is not None}


def test_a_drained_node_evicts_the_worker_with_its_grace_period_and_the_gang_resumes_elsewhere(
    cluster: ControlPlane,
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    pool: TwoNodePool,
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", training_job("drained", pool.name)
    )
    running = wait_for_training_job(
        custom, namespace, "drained", lambda tj: tj.get("status", {}).get("phase") == "Running", "Running"
    )
    assert running["status"]["terminationGracePeriodSeconds"] == GRACE_SECONDS
    (first,) = worker_pods(core, namespace, "drained")
    assert first.spec.termination_grace_period_seconds == GRACE_SECONDS
    # torchrun waits as long for its processes' checkpoint, less what it needs to exit itself
    assert env_of(first)["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] == str(GRACE_SECONDS - 5)
    drained_node = first.spec.node_name
    (other_node,) = set(pool.nodes) - {drained_node}

    # What the node-termination handler does: cordon, then evict through the Eviction API (kubectl drain
    # waits until the pod is gone, so it runs beside the test).
    drain = subprocess.Popen(
        [
            str(cluster.kubectl_bin),
            f"--kubeconfig={cluster.kubeconfig}",
            "drain",
            drained_node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=120s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        evicting = wait_for_training_job(
            custom,
            namespace,
            "drained",
            lambda tj: tj.get("status", {}).get("lastRestartReason") == c.REASON_WORKER_EVICTED,
            "the eviction seen as WorkerEvicted",
        )
        assert core.read_node(drained_node).spec.unschedulable
        # The Running condition says WorkerEvicted only until the next gang runs, which on kwok's nodes
        # can be before this test reads it; the Warning event stays.
        evicted = f"Worker {first.metadata.name} was evicted: EvictionByEvictionAPI"

        def eviction_events() -> list[Any]:
            events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=drained").items
            return [e for e in events if e.reason == c.REASON_WORKER_EVICTED and e.type == "Warning"]

        wait_for(eviction_events, 30, "the WorkerEvicted event")
        (event,) = eviction_events()
        # the operator sees the evicted worker either still stopping (it has its grace period to save a
        # checkpoint) or already stopped (kwok ends its container with SIGTERM's 143 at once): which one
        # first is a race of this plane's timing, and the event says which it saw
        stopping, stopped = "saves a checkpoint in its grace period", "exit code 143"
        assert evicted in event.message and (stopping in event.message or stopped in event.message), event
        (record,) = evicting["status"]["failures"]
        assert (record["attempt"], record["reason"], record["pod"], record["node"]) == (
            0,
            c.REASON_WORKER_EVICTED,
            first.metadata.name,
            drained_node,
        )
        assert record["logs"] == "az://out/drained/checkpoints/logs/attempt-0"

        resumed = wait_for_training_job(
            custom,
            namespace,
            "drained",
            lambda tj: tj["status"].get("restarts") == 1 and tj["status"].get("phase") == "Running",
            "the next attempt running",
        )
        assert condition(resumed, "Running")["reason"] == c.REASON_ALL_WORKERS_RUNNING  # type: ignore[index]
        (second,) = worker_pods(core, namespace, "drained")
        assert second.spec.node_name == other_node
        assert second.metadata.labels[c.LABEL_RESTART_ATTEMPT] == "1"
        assert env_of(second)["MODELFLEET_RESTART_ATTEMPT"] == "1"  # the runtime resumes from the checkpoint
        wait_for(lambda: drain.poll() is not None, 60, "kubectl drain to finish")
        output = drain.stdout.read() if drain.stdout else ""
        assert drain.returncode == 0, output
        assert f"pod/{first.metadata.name} evicted" in output
    finally:
        if drain.poll() is None:
            drain.kill()
        drain.wait()
        if drain.stdout:
            drain.stdout.close()
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", "drained")
