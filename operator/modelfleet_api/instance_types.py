"""The AKS GPU VM sizes modelfleet schedules on, and the node labels/taints AKS gives them.

The CRD's ``instanceType`` enum and its CEL rules (GPUs per pod must fit the VM) are generated
from ``CATALOGUE``, and the operator reads it for node selectors, tolerations and GPU requests, so
adding a VM size is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class InstanceType(StrEnum):
    """An AKS H100 VM size."""

    NC40ADIS_H100_V5 = "Standard_NC40adis_H100_v5"
    NC80ADIS_H100_V5 = "Standard_NC80adis_H100_v5"
    ND96ISR_H100_V5 = "Standard_ND96isr_H100_v5"


@dataclass(frozen=True, kw_only=True)
class InstanceTypeInfo:
    gpus: int
    """NVIDIA GPUs per VM (the node's ``nvidia.com/gpu`` capacity)."""
    gpu_model: str
    gpu_memory_gib: int
    """Memory of one GPU."""
    vcpu: int
    memory_gib: int
    pool: str
    """Name of the AKS node pool of this size in DESIGN.md and the Terraform example."""
    infiniband: bool
    """Whether the VMs have an InfiniBand fabric between them (multi-node NCCL over RDMA)."""


CATALOGUE: Final[dict[InstanceType, InstanceTypeInfo]] = {
    InstanceType.NC40ADIS_H100_V5: InstanceTypeInfo(
        gpus=1,
        gpu_model="H100 NVL",
        gpu_memory_gib=94,
        vcpu=40,
        memory_gib=320,
        pool="nc40h100",
        infiniband=False,
    ),
    InstanceType.NC80ADIS_H100_V5: InstanceTypeInfo(
        gpus=2,
        gpu_model="H100 NVL",
        gpu_memory_gib=94,
        vcpu=80,
        memory_gib=640,
        pool="nc80h100",
        infiniband=False,
    ),
    InstanceType.ND96ISR_H100_V5: InstanceTypeInfo(
        gpus=8,
        gpu_model="H100 SXM",
        gpu_memory_gib=80,
        vcpu=96,
        memory_gib=1900,
        pool="nd96h100",
        infiniband=True,
    ),
}


def info(instance_type: InstanceType | str) -> InstanceTypeInfo:
    """The catalogue entry of a VM size; a clear error for a size modelfleet does not know."""
    try:
        return CATALOGUE[InstanceType(instance_type)]
    except ValueError:
        allowed = ", ".join(t.value for t in InstanceType)
        raise ValueError(f"unknown instance type {instance_type!r}; allowed: {allowed}") from None


def gpus_by_instance_type_cel() -> str:
    """A CEL map literal from VM size to GPUs, for rules that check a GPU count against the size."""
    entries = ", ".join(f"'{name.value}': {entry.gpus}" for name, entry in CATALOGUE.items())
    return "{" + entries + "}"


# ---- what AKS puts on its nodes -----------------------------------------------------------------
GPU_RESOURCE: Final = "nvidia.com/gpu"
NODE_LABEL_AGENTPOOL: Final = "kubernetes.azure.com/agentpool"
NODE_LABEL_INSTANCE_TYPE: Final = "node.kubernetes.io/instance-type"
NODE_LABEL_ACCELERATOR: Final = "kubernetes.azure.com/accelerator"
NODE_LABEL_SCALESET_PRIORITY: Final = "kubernetes.azure.com/scalesetpriority"
SPOT_PRIORITY: Final = "spot"
"""Value of ``NODE_LABEL_SCALESET_PRIORITY`` on spot nodes; AKS also taints them with it."""
SPOT_TAINT_KEY: Final = NODE_LABEL_SCALESET_PRIORITY
GPU_TAINT_KEY: Final = "sku"
GPU_TAINT_VALUE: Final = "gpu"
"""Every GPU pool is tainted ``sku=gpu:NoSchedule`` so only GPU workloads land there."""
