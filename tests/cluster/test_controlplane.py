"""The local control plane is the real thing: scheduler, garbage collector, RBAC, kwok GPU nodes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kubernetes import client

from hack.controlplane.cluster import COMPONENTS, ControlPlane, wait_for
from hack.controlplane.kwok import POOLS, finish_pod, node_ready
from tests.cluster.conftest import wait_for_event

pytestmark = pytest.mark.cluster

GPU_TOLERATION = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
SPOT_TOLERATION = {
    "key": "kubernetes.azure.com/scalesetpriority",
    "operator": "Equal",
    "value": "spot",
    "effect": "NoSchedule",
}


def gpu_pod(name: str, gpus: int, tolerations: list[dict[str, str]], **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
            "tolerations": tolerations,
            **spec,
        },
    }


def node_of(core: client.CoreV1Api, node_name: str) -> client.V1Node:
    return core.read_node(node_name)


def test_server_reports_its_real_version(cluster: ControlPlane) -> None:
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == os.environ.get("K8S_VERSION", "v1.36.3")
    assert out["serverVersion"]["major"] == "1"


def test_fake_nodes_mirror_the_aks_pools(api_client: client.ApiClient) -> None:
    nodes = client.CoreV1Api(api_client).list_node().items
    by_pool: dict[str, list[client.V1Node]] = {}
    for node in nodes:
        by_pool.setdefault(node.metadata.labels["kubernetes.azure.com/agentpool"], []).append(node)
    for pool in POOLS.values():
        assert len(by_pool[pool.name]) >= pool.count, pool.name
        node = by_pool[pool.name][0]
        assert node.metadata.labels["node.kubernetes.io/instance-type"] == pool.instance_type
        assert node.status.allocatable.get("nvidia.com/gpu", "0") == str(pool.gpus)
        taints = {(t.key, t.value, t.effect) for t in node.spec.taints or []}
        assert (("sku", "gpu", "NoSchedule") in taints) == bool(pool.gpus)
        spot = ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule") in taints
        assert spot == pool.spot
        assert node_ready(node)


def test_two_gpu_pod_runs_on_nc80_and_can_be_finished(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace,
        gpu_pod(
            "two-gpus",
            2,
            [GPU_TOLERATION, SPOT_TOLERATION],
            nodeSelector={"node.kubernetes.io/instance-type": "Standard_NC80adis_H100_v5"},
        ),
    )
    wait_for(
        lambda: core.read_namespaced_pod("two-gpus", namespace).status.phase == "Running", 30, "pod Running"
    )
    pod = core.read_namespaced_pod("two-gpus", namespace)
    assert node_of(core, pod.spec.node_name).metadata.labels["node.kubernetes.io/instance-type"] == (
        "Standard_NC80adis_H100_v5"
    )
    assert pod.status.pod_ip

    finish_pod(core, namespace, "two-gpus", succeeded=False, exit_code=137, reason="OOMKilled")
    pod = core.read_namespaced_pod("two-gpus", namespace)
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_sixteen_gpus_stay_pending_with_the_schedulers_reason(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, gpu_pod("too-big", 16, [GPU_TOLERATION, SPOT_TOLERATION]))

    def failed_scheduling() -> list[client.CoreV1Event]:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=too-big").items
        return [e for e in events if e.reason == "FailedScheduling"]

    wait_for(lambda: failed_scheduling(), 30, "a FailedScheduling event")
    assert "Insufficient nvidia.com/gpu" in failed_scheduling()[0].message
    pod = core.read_namespaced_pod("too-big", namespace)
    assert pod.status.phase == "Pending" and not pod.spec.node_name


def test_pods_without_spot_toleration_never_land_on_spot(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    # pinned to the spot pool without tolerating it: stays Pending, the scheduler says why
    core.create_namespaced_pod(
        namespace,
        gpu_pod("pinned", 1, [GPU_TOLERATION], nodeSelector={"kubernetes.azure.com/agentpool": "nc80h100"}),
    )
    # free to go anywhere: each lands on a non-spot GPU node
    for i in range(4):
        core.create_namespaced_pod(namespace, gpu_pod(f"free-{i}", 1, [GPU_TOLERATION]))

    def placed() -> bool:
        return all(core.read_namespaced_pod(f"free-{i}", namespace).spec.node_name for i in range(4))

    wait_for(placed, 30, "the free pods to be scheduled")
    for i in range(4):
        node = node_of(core, core.read_namespaced_pod(f"free-{i}", namespace).spec.node_name)
        assert "kubernetes.azure.com/scalesetpriority" not in node.metadata.labels
    wait_for_event(core, namespace, "pinned", "FailedScheduling", "untolerated taint")
    assert not core.read_namespaced_pod("pinned", namespace).spec.node_name


def test_garbage_collector_deletes_owned_children(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
            return False
        except client.ApiException as exc:
            return exc.status == 404

    wait_for(child_gone, 30, "the garbage collector to delete the owned ConfigMap")


def test_rbac_denies_then_allows_a_service_account(
    cluster: ControlPlane, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "worker"}})
    token = core.create_namespaced_service_account_token(
        "worker", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    configuration = client.Configuration()
    configuration.host = cluster.server
    configuration.ssl_ca_cert = str(cluster.pki.ca_cert)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    as_worker = client.CoreV1Api(client.ApiClient(configuration))

    with pytest.raises(client.ApiException) as denied:
        as_worker.create_namespaced_config_map(namespace, {"metadata": {"name": "denied"}})
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:worker" in denied.value.body

    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "worker-configmaps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": namespace}],
        },
    )

    def allowed() -> bool:
        try:
            as_worker.create_namespaced_config_map(namespace, {"metadata": {"name": "allowed"}})
            return True
        except client.ApiException as exc:
            if exc.status != 403:
                raise
            return False

    wait_for(allowed, 10, "the RoleBinding to take effect")


def _processes_under(run_dir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_second_control_plane_up_is_idempotent_and_down_leaves_nothing(
    cluster: ControlPlane, tmp_path: Path
) -> None:
    plane = ControlPlane(run_dir=tmp_path / "cluster", port_base=cluster.port_base + 100)
    try:
        assert plane.up() is True
        assert plane.running()
        assert plane.up() is False  # reused, nothing started twice
        assert len(_processes_under(plane.run_dir)) == len(COMPONENTS)
    finally:
        plane.down()
    assert _processes_under(plane.run_dir) == []
    assert not plane.running()
