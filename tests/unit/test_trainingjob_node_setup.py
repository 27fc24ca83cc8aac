"""The operator's settings of what training workers get from their nodes: InfiniBand's device resource
and NCCL topology files, and the node-local cache (``config.load_worker_node_settings``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelfleet_api.instance_types import InstanceType
from modelfleet_operator.config import load_config
from modelfleet_operator.worker_nodes import NodeCache, WorkerNodeSettings

pytestmark = pytest.mark.unit


def test_by_default_infiniband_sizes_use_the_network_operators_shared_device_and_the_cache_is_the_pods() -> (
    None
):
    assert load_config([], {}).worker_nodes == WorkerNodeSettings(
        rdma_resource="rdma/rdma_shared_device_a", rdma_per_worker=1, nccl_topology={}, cache=NodeCache()
    )


def test_the_chart_names_another_resource_or_none_and_a_host_directory_with_a_cap() -> None:
    nodes = load_config(
        [],
        {
            "MODELFLEET_RDMA_RESOURCE": "rdma/ib",
            "MODELFLEET_RDMA_PER_WORKER": "8",
            "MODELFLEET_NODE_CACHE": "hostPath:/mnt/modelfleet/cache",
            "MODELFLEET_NODE_CACHE_MAX_SIZE": "1.5Ti",
        },
    ).worker_nodes
    assert (nodes.rdma_resource, nodes.rdma_per_worker) == ("rdma/ib", 8)
    assert nodes.cache == NodeCache(host_path="/mnt/modelfleet/cache", max_bytes=int(1.5 * 2**40))
    off = load_config([], {"MODELFLEET_RDMA_RESOURCE": "", "MODELFLEET_NODE_CACHE": "emptyDir:200Gi"})
    assert off.worker_nodes.rdma_resource is None
    assert off.worker_nodes.cache == NodeCache(size_limit="200Gi")


def test_topology_files_are_read_by_vm_size(tmp_path: Path) -> None:
    (tmp_path / "Standard_ND96isr_H100_v5.xml").write_text("<system version='1'/>")
    nodes = load_config([], {"MODELFLEET_NCCL_TOPOLOGY_DIR": str(tmp_path)}).worker_nodes
    assert nodes.nccl_topology == {InstanceType.ND96ISR_H100_V5: "<system version='1'/>"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELFLEET_RDMA_RESOURCE": "shared_ib"}, "MODELFLEET_RDMA_RESOURCE='shared_ib' is not valid"),
        ({"MODELFLEET_RDMA_PER_WORKER": "0"}, "MODELFLEET_RDMA_PER_WORKER must be at least 1"),
        ({"MODELFLEET_NODE_CACHE": "hostPath:relative"}, "hostPath needs an absolute directory"),
        ({"MODELFLEET_NODE_CACHE": "hostPath:/mnt/../etc"}, "hostPath needs an absolute directory"),
        ({"MODELFLEET_NODE_CACHE": "nvme"}, "expected emptyDir, emptyDir:SIZE or hostPath:/PATH"),
        ({"MODELFLEET_NODE_CACHE": "emptyDir:lots"}, "'lots' is not a quantity"),
        (
            {"MODELFLEET_NODE_CACHE": "hostPath:/mnt/c", "MODELFLEET_NODE_CACHE_MAX_SIZE": "-1"},
            "MODELFLEET_NODE_CACHE_MAX_SIZE='-1' is not a quantity",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_config([], env)


@pytest.mark.parametrize(
    ("name", "message"),
    [("Standard_NC40adis_H100_v5.xml", "has no InfiniBand"), ("ndv5-topo.xml", "names no known VM size")],
)
def test_a_topology_file_must_name_an_infiniband_size(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / name).write_text("<system/>")
    with pytest.raises(ValueError, match=message):
        load_config([], {"MODELFLEET_NCCL_TOPOLOGY_DIR": str(tmp_path)})
