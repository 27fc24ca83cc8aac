"""The chart's training settings: the operator's InfiniBand and node-cache environment (read back through
the operator's own config loader), the optional RDMA shared device plugin and node-termination handler,
and the values schema's rules for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.instance_types import CATALOGUE, InstanceType
from modelfleet_operator.config import load_config
from modelfleet_operator.worker_nodes import NodeCache, WorkerNodeSettings

from tests.chart.helm import by_kind, needs_helm, render, template

pytestmark = [pytest.mark.chart, needs_helm]

INFINIBAND_SIZES = [size.value for size, vm in CATALOGUE.items() if vm.infiniband]
HANDLER = "modelfleet-node-termination-handler"
PLUGIN = "modelfleet-rdma-shared-device-plugin"


def operator_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = by_kind(docs, "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {item["name"]: item["value"] for item in env if "value" in item}


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in by_kind(docs, kind) if doc["metadata"]["name"] == name]
    return found


def test_by_default_workers_use_the_network_operators_rdma_resource_and_a_cache_on_the_temp_disk() -> None:
    docs = render()
    assert load_config([], operator_env(docs)).worker_nodes == WorkerNodeSettings(
        rdma_resource="rdma/rdma_shared_device_a",
        rdma_per_worker=1,
        cache=NodeCache(host_path="/mnt/modelfleet/cache"),
    )
    assert not by_kind(docs, "DaemonSet")


def test_other_settings_reach_the_operator() -> None:
    docs = render(
        "--set", "training.rdma.resourceName=rdma/ib",
        "--set", "training.rdma.perWorker=8",
        "--set", "training.nodeCache.type=emptyDir",
        "--set", "training.nodeCache.sizeLimit=300Gi",
    )  # fmt: skip
    nodes = load_config([], operator_env(docs)).worker_nodes
    assert (nodes.rdma_resource, nodes.rdma_per_worker) == ("rdma/ib", 8)
    assert nodes.cache == NodeCache(size_limit="300Gi")
    off = render("--set", "training.rdma.resourceName=", "--set", "training.nodeCache.maxSize=2Ti")
    nodes = load_config([], operator_env(off)).worker_nodes
    assert nodes.rdma_resource is None and nodes.cache.max_bytes == 2 * 2**40


def test_topology_files_are_mounted_into_the_operator_by_vm_size(tmp_path: Path) -> None:
    xml = "<system version='1'><cpu numaid='0'/></system>"
    docs = render("--set-string", f"training.rdma.ncclTopology.Standard_ND96isr_H100_v5={xml}")
    config_map = named(docs, "ConfigMap", "modelfleet-nccl-topology")
    assert config_map["data"] == {"Standard_ND96isr_H100_v5.xml": xml}
    (deployment,) = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "nccl-topology", "configMap": {"name": "modelfleet-nccl-topology"}} in pod["volumes"]
    mount = {"name": "nccl-topology", "mountPath": "/etc/modelfleet-operator/nccl-topology", "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    for name, text in config_map["data"].items():  # what the kubelet makes of the ConfigMap volume
        (tmp_path / name).write_text(text)
    env = operator_env(docs) | {"MODELFLEET_NCCL_TOPOLOGY_DIR": str(tmp_path)}
    assert load_config([], env).worker_nodes.nccl_topology == {InstanceType.ND96ISR_H100_V5: xml}


def test_the_rdma_shared_device_plugin_runs_on_the_infiniband_sizes_and_advertises_the_resource() -> None:
    docs = render("--set", "training.rdma.sharedDevicePlugin.enabled=true")
    config = json.loads(named(docs, "ConfigMap", PLUGIN)["data"]["config.json"])
    assert config["configList"] == [
        {
            "resourceName": "rdma_shared_device_a",
            "rdmaHcaMax": 63,
            "selectors": {"vendors": ["15b3"], "linkTypes": ["infiniband"]},
        }
    ]
    pod = named(docs, "DaemonSet", PLUGIN)["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": INFINIBAND_SIZES}
    ]
    assert {(t["key"], t["value"]) for t in pod["tolerations"]} == {
        ("sku", "gpu"),
        ("kubernetes.azure.com/scalesetpriority", "spot"),
    }
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/mellanox/k8s-rdma-shared-dev-plugin:v1.5.3"
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {
        "/var/lib/kubelet/device-plugins",
        "/dev/",
    }


def test_the_rdma_plugin_refuses_a_resource_it_cannot_advertise() -> None:
    result = template(
        "--set", "training.rdma.sharedDevicePlugin.enabled=true",
        "--set", "training.rdma.resourceName=nvidia.com/ib",
    )  # fmt: skip
    assert result.returncode != 0
    assert "set training.rdma.resourceName to rdma/NAME" in result.stderr


def test_the_node_termination_handler_drains_gpu_nodes_with_each_pods_own_grace_period() -> None:
    docs = render(
        "--set", "training.nodeTerminationHandler.enabled=true",
        "--set", "training.nodeTerminationHandler.drainTimeoutSeconds=1200",
    )  # fmt: skip
    pod = named(docs, "DaemonSet", HANDLER)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "paskalmaksim/aks-node-termination-handler:v1.0.18"
    assert container["args"] == [
        "-podGracePeriodSeconds=-1",
        "-nodeGracePeriodSeconds=1200",
        "-taint.node=true",
    ]
    assert container["env"] == [
        {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]
    assert pod["nodeSelector"] == {"kubernetes.azure.com/accelerator": "nvidia"}
    assert {(t["key"], t["value"]) for t in pod["tolerations"]} == {
        ("sku", "gpu"),
        ("kubernetes.azure.com/scalesetpriority", "spot"),
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["serviceAccountName"] == HANDLER
    # Only the handler may cordon nodes and evict pods; the operator's own role stays without them.
    role = named(docs, "ClusterRole", HANDLER)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    binding = named(docs, "ClusterRoleBinding", HANDLER)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": HANDLER, "namespace": "modelfleet-system"}
    ]
    operator_role = named(docs, "ClusterRole", "modelfleet")
    granted = {resource for rule in operator_role["rules"] for resource in rule["resources"]}
    assert not granted & {"nodes", "pods/eviction"}


def test_the_chart_knows_the_catalogues_infiniband_sizes() -> None:
    docs = render("--set", "training.rdma.sharedDevicePlugin.enabled=true")
    pod = named(docs, "DaemonSet", PLUGIN)["spec"]["template"]["spec"]
    values = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]["values"]
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "charts/modelfleet/values.schema.json").read_text()
    )
    topology = schema["properties"]["training"]["properties"]["rdma"]["properties"]["ncclTopology"]
    assert values == topology["propertyNames"]["enum"] == INFINIBAND_SIZES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "training.rdma.resourceName=shared_ib"], "/training/rdma/resourceName"),
        (["--set", "training.rdma.perWorker=0"], "/training/rdma/perWorker"),
        (
            ["--set-string", "training.rdma.ncclTopology.Standard_NC40adis_H100_v5=<system/>"],
            "invalid propertyName 'Standard_NC40adis_H100_v5'",
        ),
        (["--set", "training.nodeCache.type=nvme"], "/training/nodeCache/type"),
        (["--set", "training.nodeCache.path=relative/dir"], "/training/nodeCache/path"),
        (["--set", "training.nodeCache.maxSize=lots"], "/training/nodeCache/maxSize"),
        (
            ["--set", "training.nodeTerminationHandler.drainTimeoutSeconds=10"],
            "/training/nodeTerminationHandler",
        ),
        (
            ["--set", "training.nodeTerminationHandler.image=handler"],
            "/training/nodeTerminationHandler/image",
        ),
    ],
)
def test_schema_rejects_bad_training_values(args: list[str], message: str) -> None:
    result = template(*args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr


def test_the_recommended_terraform_pools_fit_every_gpu_training_example() -> None:
    """Each example TrainingJob on a GPU size has a pool of that size (and spot-ness) in the recommended
    values and in the example's defaults, that may grow to its node count."""
    import yaml
    from modelfleet_api.trainingjob import TrainingJob

    from tests.chart.hcl import REPO, blocks, load

    example = REPO / "terraform" / "examples" / "aks-h100"
    pool_sets = {
        "examples/aks.tfvars": load(REPO / "examples" / "aks.tfvars")["gpu_pools"],
        "variables.tf": blocks(example / "variables.tf", "variable")["gpu_pools"]["default"],
    }
    checked = 0
    for path in sorted((REPO / "examples").glob("trainingjob-*.yaml")):
        resources = TrainingJob.model_validate(yaml.safe_load(path.read_text())).spec.resources
        if resources.on_cpu:
            continue
        for where, pools in pool_sets.items():
            fitting = [
                name
                for name, pool in pools.items()
                if pool["vm_size"] == resources.instance_type.value
                and pool.get("spot", False) == resources.spot
                and int(pool["max_count"]) >= resources.nodes
            ]
            assert fitting, (
                f"{path.name}: no {resources.instance_type.value} pool of {resources.nodes} in {where}"
            )
        checked += 1
    assert checked >= 2
