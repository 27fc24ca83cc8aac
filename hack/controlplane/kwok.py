"""Fake AKS nodes for kwok, and the helper tests use to finish a pod as a kubelet would.

The pools mirror ``shared/DESIGN.md``: the labels and taints are the ones AKS itself puts on a node
of that pool, so the operator's node selection and tolerations are exercised as on a real cluster.
kwok plays the GPU pools (no pod on them runs); the system pool only on a plane without the real node
(``hack.node``), for cluster tests that finish CPU pods in place of the runtimes.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from modelfleet_api import instance_types
from modelfleet_operator.worker_nodes import DEFAULT_RDMA_RESOURCE

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
GPU_TAINT = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}
SPOT_TAINT = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Pool:
    """One AKS agent pool: its VM size and what each node offers."""

    name: str
    instance_type: str
    gpus: int
    cpus: int
    memory_gi: int
    count: int
    spot: bool = False
    gpu_product: str | None = None
    max_pods: int = 110
    """Pods a node admits (the kubelet's default); the scale benchmark's pool packs thousands."""

    @property
    def taints(self) -> list[dict[str, str]]:
        taints = [GPU_TAINT] if self.gpus else []
        return [*taints, SPOT_TAINT] if self.spot else taints

    def labels(self, node_name: str) -> dict[str, str]:
        labels = {
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": node_name,
            "type": "kwok",
            "node.kubernetes.io/instance-type": self.instance_type,
            "beta.kubernetes.io/instance-type": self.instance_type,
            "kubernetes.azure.com/agentpool": self.name,
            "agentpool": self.name,
            "kubernetes.azure.com/mode": "user" if self.gpus else "system",
            "kubernetes.azure.com/cluster": "modelfleet-local",
            "topology.kubernetes.io/region": "eastus2",
            "topology.kubernetes.io/zone": "eastus2-1",
        }
        if self.gpus:
            labels["kubernetes.azure.com/accelerator"] = "nvidia"
            labels["nvidia.com/gpu.present"] = "true"
            labels["nvidia.com/gpu.count"] = str(self.gpus)
            labels["nvidia.com/gpu.product"] = self.gpu_product or "NVIDIA-H100"
        if self.spot:
            labels["kubernetes.azure.com/scalesetpriority"] = "spot"
        return labels

    def node_name(self, index: int) -> str:
        return f"aks-{self.name}-vmss{index:06d}"


POOLS: dict[str, Pool] = {
    pool.name: pool
    for pool in (
        Pool("system", "Standard_D8s_v5", gpus=0, cpus=8, memory_gi=32, count=1),
        Pool("nc40h100", "Standard_NC40adis_H100_v5", 1, 40, 320, 2, gpu_product="NVIDIA-H100-NVL"),
        Pool(
            "nc80h100", "Standard_NC80adis_H100_v5", 2, 80, 640, 2, spot=True, gpu_product="NVIDIA-H100-NVL"
        ),
        Pool("nd96h100", "Standard_ND96isr_H100_v5", 8, 96, 1900, 4, gpu_product="NVIDIA-H100-80GB-HBM3"),
    )
}


RDMA_PODS_PER_NODE = 63
"""What the RDMA shared device plugin advertises per node by default (its rdmaHcaMax in Azure's guide)."""


def node_manifest(pool: Pool, name: str) -> dict[str, Any]:
    """An AKS node of ``pool``; on an InfiniBand VM size it also advertises the RDMA shared device
    plugin's resource, as a node does once the plugin (or the NVIDIA Network Operator) runs there."""
    resources = {
        "cpu": str(pool.cpus),
        "memory": f"{pool.memory_gi}Gi",
        "pods": str(pool.max_pods),
        "ephemeral-storage": "256Gi",
    }
    if pool.gpus:
        resources["nvidia.com/gpu"] = str(pool.gpus)
    if instance_types.info(pool.instance_type).infiniband:
        resources[DEFAULT_RDMA_RESOURCE] = str(RDMA_PODS_PER_NODE)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": pool.labels(name),
        },
        "spec": {"taints": pool.taints, "providerID": f"kwok://{name}"},
        "status": {"capacity": resources, "allocatable": resources},
    }


def add_node(core_v1: client.CoreV1Api, name: str, pool: Pool | str) -> None:
    """Registers a fake node of ``pool`` (kwok marks it Ready); an existing node is left as it is."""
    pool = POOLS[pool] if isinstance(pool, str) else pool
    manifest = node_manifest(pool, name)
    try:
        # the client validates a dict body into a V1Node anyway; done here, the call is typed
        core_v1.create_node(client.V1Node.model_validate(manifest))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        return
    # the create drops status; capacity must be written through the status subresource
    core_v1.patch_node_status(name, {"status": manifest["status"]})


def register_pools(core_v1: client.CoreV1Api, *, simulated_system_pool: bool) -> list[str]:
    names = []
    for pool in POOLS.values():
        if not pool.gpus and not simulated_system_pool:
            continue
        for index in range(pool.count):
            name = pool.node_name(index)
            add_node(core_v1, name, pool)
            names.append(name)
    return names


def ready_nodes(nodes: Iterable[client.V1Node]) -> set[str]:
    """The names of the nodes whose Ready condition is True (a node without a status yet is not)."""
    return {node.metadata.name for node in nodes if node.metadata and node.metadata.name and node_ready(node)}


def node_ready(node: client.V1Node) -> bool:
    """Whether the node's Ready condition is True (a node without a status yet is not)."""
    conditions = node.status.conditions if node.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def _containers(pod: client.V1Pod, name: str) -> list[client.V1Container]:
    if pod.spec is None:  # the API server returns every pod with its spec
        raise ValueError(f"pod {name} came without a spec")
    return pod.spec.containers


def finish_pod(
    core_v1: client.CoreV1Api,
    namespace: str,
    name: str,
    *,
    succeeded: bool,
    exit_code: int | None = None,
    reason: str | None = None,
    message: str = "",
) -> None:
    """Ends every container of a Running pod and sets its phase, as a kubelet reports it.

    ``exit_code`` defaults to 0 on success and 1 on failure; ``reason`` to Completed/Error.
    """
    pod = core_v1.read_namespaced_pod(name, namespace)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    code = exit_code if exit_code is not None else (0 if succeeded else 1)
    why = reason or ("Completed" if succeeded else "Error")
    statuses = []
    container_statuses = (pod.status.container_statuses if pod.status else None) or []
    for container in _containers(pod, name):
        started = now
        for status in container_statuses:
            running = status.state.running if status.state else None
            if status.name == container.name and running and running.started_at:
                started = running.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {"exitCode": code, "reason": why, "startedAt": started, "finishedAt": now}
        if message:
            terminated["message"] = message
        statuses.append(
            {
                "name": container.name,
                "image": container.image,
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        )
    conditions = [
        {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
    ]
    core_v1.patch_namespaced_pod_status(
        name,
        namespace,
        {
            "status": {
                "phase": "Succeeded" if succeeded else "Failed",
                "conditions": conditions,
                "containerStatuses": statuses,
            }
        },
    )


def crash_loop_pod(core_v1: client.CoreV1Api, namespace: str, name: str, restarts: int = 3) -> None:
    """Marks a Running pod's containers as crash-looping (waiting in CrashLoopBackOff, not ready)."""
    pod = core_v1.read_namespaced_pod(name, namespace)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses = [
        {
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": restarts,
            "state": {
                "waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}
            },
            "lastState": {
                "terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}
            },
        }
        for c in _containers(pod, name)
    ]
    core_v1.patch_namespaced_pod_status(
        name,
        namespace,
        {
            "status": {
                "phase": "Running",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "ContainersNotReady",
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "ContainersReady",
                        "status": "False",
                        "reason": "ContainersNotReady",
                        "lastTransitionTime": now,
                    },
                ],
                "containerStatuses": statuses,
            }
        },
    )
