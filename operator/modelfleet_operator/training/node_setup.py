"""What a training worker gets from the node it runs on (pure): InfiniBand on the VM sizes that have
it, a sized ``/dev/shm``, and the cache of downloads kept on the node.

**InfiniBand.** The ND sizes (``instance_types``: ``infiniband``) have one InfiniBand NIC per GPU with
GPUDirect RDMA. A pod reaches the HCAs only through a device plugin's extended resource (the NVIDIA Network
Operator's RDMA shared device plugin by default), needs ``IPC_LOCK`` to pin its RDMA buffers (without it
the locked-memory limit is 64 KiB), and NCCL needs to be told to use them (``RDMA_ENV``): Azure's own HPC
settings for the ND v4/v5 VMs (learn.microsoft.com, "HPC workload configuration"; the NCCL examples of
github.com/Azure/azhpc-images), plus the VM size's topology file when the operator was given one.

**/dev/shm.** NCCL's shared-memory transport between the node's GPUs and the data loaders' workers use
it. A memory-backed emptyDir counts against the pod's memory limit, so its size limit is that limit
(``resources.sharedMemory`` to ask for less): ``df /dev/shm`` then shows what the pod may really use.

**The node cache.** ``hostPath``: a directory on the node kept across gang restarts and shared by every
job on the node; the runtime locks each entry, so two workers never download the same file twice
(``modelfleet_train.node_cache``). An init container opens the directory to every user (mode 1777, as
/tmp), since the kubelet creates it root-owned and the runtime image runs as a user. ``emptyDir``: the
pod's own, nothing kept.
"""

from __future__ import annotations

from typing import Any

from modelfleet_api import contract
from modelfleet_api import instance_types as it
from modelfleet_api.instance_types import InstanceType

from modelfleet_operator.worker_nodes import NodeCache, WorkerNodeSettings

NCCL_TOPOLOGY_FILE = "nccl-topology.xml"
"""Key in the job's config ConfigMap (and file under ``contract.CONFIG_DIR``) of the topology file."""
IB_HCA_PREFIX = "mlx5_ib"
"""Azure's names of the InfiniBand HCAs of an ND VM (``mlx5_ib0`` ...); ``mlx5_an0`` is its accelerated
networking Ethernet function, which NCCL must not take for an RDMA NIC."""
CACHE_INIT_CONTAINER = "cache-permissions"


def uses_rdma(instance_type: InstanceType, settings: WorkerNodeSettings) -> bool:
    return it.info(instance_type).infiniband and settings.rdma_resource is not None


def topology_of(instance_type: InstanceType, settings: WorkerNodeSettings) -> str | None:
    """The NCCL topology file the job's workers read, when RDMA is on and the size has one."""
    return settings.nccl_topology.get(instance_type) if uses_rdma(instance_type, settings) else None


def rdma_resources(instance_type: InstanceType, settings: WorkerNodeSettings) -> dict[str, str]:
    """Extra container resources (requests and limits) of a worker on this VM size."""
    if not uses_rdma(instance_type, settings):
        return {}
    assert settings.rdma_resource is not None
    return {settings.rdma_resource: str(settings.rdma_per_worker)}


def rdma_env(instance_type: InstanceType, settings: WorkerNodeSettings) -> list[dict[str, str]]:
    """NCCL's and UCX's InfiniBand settings for a worker on this VM size (none without RDMA). They come
    before the spec's own ``env``, which can override any of them."""
    if not uses_rdma(instance_type, settings):
        return []
    nics = it.info(instance_type).gpus  # one InfiniBand NIC per GPU on the ND sizes
    values = {
        "NCCL_IB_DISABLE": "0",
        "NCCL_IB_HCA": IB_HCA_PREFIX,
        # PCIe relaxed ordering for GPUDirect RDMA, which Azure's VMs need for full bandwidth
        "NCCL_IB_PCI_RELAXED_ORDERING": "1",
        # GPUDirect RDMA between any GPU and NIC of the VM (Azure's HPC images: NCCL_NET_GDR_LEVEL=5)
        "NCCL_NET_GDR_LEVEL": "SYS",
        # bootstrap and out-of-band traffic over the pod's own interface
        "NCCL_SOCKET_IFNAME": "eth0",
        # GPUs numbered by PCI bus, as the topology file describes them
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "UCX_TLS": "rc",
        "UCX_NET_DEVICES": ",".join(f"{IB_HCA_PREFIX}{index}:1" for index in range(nics)),
        "UCX_IB_PCI_RELAXED_ORDERING": "on",
    }
    if topology_of(instance_type, settings) is not None:
        values["NCCL_TOPO_FILE"] = f"{contract.CONFIG_DIR}/{NCCL_TOPOLOGY_FILE}"
    return [{"name": name, "value": value} for name, value in values.items()]


def rdma_security_context(instance_type: InstanceType, settings: WorkerNodeSettings) -> dict[str, Any]:
    """``IPC_LOCK``: RDMA registers (pins) its buffers, which the default 64 KiB locked-memory limit of
    a container forbids."""
    if not uses_rdma(instance_type, settings):
        return {}
    return {"securityContext": {"capabilities": {"add": ["IPC_LOCK"]}}}


def shared_memory_volume(size_limit: str) -> dict[str, Any]:
    return {"emptyDir": {"medium": "Memory", "sizeLimit": size_limit}}


def cache_volume(cache: NodeCache) -> dict[str, Any]:
    if cache.host_path is not None:
        return {"hostPath": {"path": cache.host_path, "type": "DirectoryOrCreate"}}
    return {"emptyDir": {"sizeLimit": cache.size_limit} if cache.size_limit else {}}


def cache_env(cache: NodeCache) -> list[dict[str, str]]:
    """Where the libraries that download or build on their own keep it: the hub and datasets (their file
    locks make a shared directory safe), DeepSpeed's compiled ops; and the cache's size cap."""
    root = contract.RUNTIME_CACHE_DIR
    env = [
        {"name": contract.ENV_HF_HOME, "value": f"{root}/huggingface"},
        {"name": contract.ENV_TORCH_EXTENSIONS_DIR, "value": f"{root}/torch_extensions"},
    ]
    if cache.max_bytes is not None:
        env.append({"name": contract.ENV_CACHE_MAX_BYTES, "value": str(cache.max_bytes)})
    return env


def cache_init_containers(cache: NodeCache, image: str, volume: str) -> list[dict[str, Any]]:
    """For a hostPath cache: open the directory to the runtime's user (the kubelet creates it as root)."""
    if cache.host_path is None:
        return []
    return [
        {
            "name": CACHE_INIT_CONTAINER,
            "image": image,
            "command": ["chmod", "1777", contract.RUNTIME_CACHE_DIR],
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
            "volumeMounts": [{"name": volume, "mountPath": contract.RUNTIME_CACHE_DIR}],
        }
    ]
