"""The shipped examples, applied with kubectl, reach Running with the pods a real AKS cluster needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from tests.cluster.conftest import OperatorProcess, condition, wait_for_phase
from tests.cluster.drive import running_workers

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def env_of(pod: Any) -> dict[str, Any]:
    return {
        e.name: e.value if e.value_from is None else e.value_from.to_dict()
        for e in pod.spec.containers[0].env
    }


def test_lora_example_runs_on_one_spot_nc80_node(
    cluster: ControlPlane,
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "trainingjob-lora-nc80.yaml"))
    name = "llama-lora-nc80"

    running = wait_for_phase(custom, namespace, name, "Running")

    status = running["status"]
    assert (status["workers"], status["gpus"], status["restarts"]) == ("1/1", 2, 0)
    assert condition(running, "Scheduled")["reason"] == "AllWorkersScheduled"
    assert condition(running, "Running")["reason"] == "AllWorkersRunning"
    [pod] = running_workers(core, namespace, name, 1)
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels["kubernetes.azure.com/agentpool"] == "nc80h100"
    container = pod.spec.containers[0]
    assert container.resources.limits["nvidia.com/gpu"] == "2"
    assert container.command == [
        "python",
        "-m",
        "modelfleet_train.supervise",
        "--",
        "torchrun",
        "-m",
        "modelfleet_train",
        "--config",
        "/etc/modelfleet/config.yaml",
    ]
    env = env_of(pod)
    assert (env["PET_NNODES"], env["PET_NPROC_PER_NODE"], env["MODELFLEET_RESTART_ATTEMPT"]) == (
        "1",
        "2",
        "0",
    )
    assert env["PET_MASTER_ADDR"] == f"{name}-0.{name}.{namespace}.svc"
    assert container.image == "ghcr.io/modelfleet/training-runtime:test"
    tolerations = {(t.key, t.value, t.effect) for t in pod.spec.tolerations}
    assert {
        ("sku", "gpu", "NoSchedule"),
        ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),
    } <= tolerations
    # the family, all owned by the TrainingJob
    owner_uid = running["metadata"]["uid"]
    for read in (
        lambda: core.read_namespaced_service(name, namespace),
        lambda: core.read_namespaced_config_map(f"{name}-config", namespace),
        lambda: core.read_namespaced_config_map(f"{name}-progress", namespace),
        lambda: core.read_namespaced_service_account(f"{name}-worker", namespace),
    ):
        assert [ref.uid for ref in read().metadata.owner_references] == [owner_uid]

    table = cluster.kubectl("get", "trainingjobs", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "PHASE",
        "WORKERS",
        "GPUS",
        "PROGRESS",
        "LOSS",
        "EVAL-LOSS",
        "COST",
        "AGE",
    ]
    assert table[1].split()[:4] == [name, "Running", "1/1", "2"]


def test_zero3_example_spreads_four_ranks_over_four_nd96_nodes(
    cluster: ControlPlane,
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "trainingjob-zero3-nd96.yaml"))
    name = "llama70b-zero3-nd96"

    running = wait_for_phase(custom, namespace, name, "Running")

    assert (running["status"]["workers"], running["status"]["gpus"]) == ("4/4", 32)
    pods = running_workers(core, namespace, name, 4)
    assert len({p.spec.node_name for p in pods}) == 4
    for rank, pod in enumerate(pods):
        assert pod.metadata.annotations["batch.kubernetes.io/job-completion-index"] == str(rank)
        assert pod.spec.hostname == f"{name}-{rank}" and pod.spec.subdomain == name
        assert pod.spec.node_selector == {"node.kubernetes.io/instance-type": "Standard_ND96isr_H100_v5"}
        assert pod.spec.containers[0].resources.requests["nvidia.com/gpu"] == "8"
        # InfiniBand: the RDMA shared device plugin's resource (the simulated ND96 nodes advertise it),
        # locked memory for RDMA, NCCL told to use the HCAs
        assert pod.spec.containers[0].resources.requests["rdma/rdma_shared_device_a"] == "1"
        assert pod.spec.containers[0].security_context.capabilities.add == ["IPC_LOCK"]
        assert env_of(pod)["NCCL_IB_HCA"] == "mlx5_ib"
        env = env_of(pod)
        assert (env["PET_NNODES"], env["PET_NPROC_PER_NODE"], env["NCCL_DEBUG"]) == ("4", "8", "WARN")
        assert env["PET_NODE_RANK"]["field_ref"]["field_path"] == (
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        )
