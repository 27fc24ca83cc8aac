"""The AKS VM sizes modelfleet schedules on, and the node labels/taints AKS gives them.

The CRD's ``instanceType`` enum and its CEL rules (GPUs per pod must fit the VM; GPU-only settings
are refused on a CPU size) are generated from ``CATALOGUE``, the Terraform pool module's list of
VM sizes is checked against it, and the operator reads it for node selectors, tolerations and
resource requests, so adding a VM size is one entry here.

Figures are Azure's published ones (learn.microsoft.com, "Sizes for virtual machines in Azure":
the NCads H100 v5, ND H100 v5, ND H200 v5, NDasr A100 v4, NDm A100 v4, NC A100 v4 and Dsv5 series
pages). Memory is the VM's as Azure lists it; GPU memory is per GPU; network bandwidth is the
series page's "Max Bandwidth (Mbps)", the VM's aggregate over all its Ethernet NICs (InfiniBand
comes on top).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class InstanceType(StrEnum):
    """An AKS VM size: NVIDIA GPU sizes (H100, H200, A100) and general-purpose CPU sizes (Dsv5)."""

    NC40ADIS_H100_V5 = "Standard_NC40adis_H100_v5"
    NC80ADIS_H100_V5 = "Standard_NC80adis_H100_v5"
    ND96ISR_H100_V5 = "Standard_ND96isr_H100_v5"
    ND96ISR_H200_V5 = "Standard_ND96isr_H200_v5"
    ND96ASR_V4 = "Standard_ND96asr_v4"
    """ND A100 v4: 8 x A100 40 GB (Azure names this size without "A100")."""
    ND96AMSR_A100_V4 = "Standard_ND96amsr_A100_v4"
    NC24ADS_A100_V4 = "Standard_NC24ads_A100_v4"
    NC48ADS_A100_V4 = "Standard_NC48ads_A100_v4"
    NC96ADS_A100_V4 = "Standard_NC96ads_A100_v4"
    D2S_V5 = "Standard_D2s_v5"
    D4S_V5 = "Standard_D4s_v5"
    D8S_V5 = "Standard_D8s_v5"
    D16S_V5 = "Standard_D16s_v5"
    D32S_V5 = "Standard_D32s_v5"
    D48S_V5 = "Standard_D48s_v5"
    D64S_V5 = "Standard_D64s_v5"
    D96S_V5 = "Standard_D96s_v5"


@dataclass(frozen=True, kw_only=True)
class InstanceTypeInfo:
    gpus: int
    """NVIDIA GPUs per VM (the node's ``nvidia.com/gpu`` capacity); 0 on a CPU size."""
    gpu_model: str | None = None
    gpu_memory_gib: int = 0
    """Memory of one GPU."""
    vcpu: int
    memory_gib: int
    network_mbps: int
    """The VM's maximum network bandwidth (Azure's figure, an upper limit it does not guarantee):
    what bounds a worker's writes to blob storage and network-attached volumes."""
    pool: str
    """Name of the AKS node pool of this size in DESIGN.md and the Terraform example (the capacity
    manager names a pool it creates for the size so too)."""
    infiniband: bool = False
    """Whether the VMs have an InfiniBand fabric between them with GPUDirect RDMA (multi-node NCCL
    over RDMA): the ND sizes, one HDR (A100) or NDR (H100, H200) link per GPU."""
    spot: bool = True
    """Whether Azure offers the size as a Spot VM. Azure excludes only the B-series and promo sizes,
    so every size here can be Spot; whether capacity is there depends on region and time."""

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


DSV5_NETWORK_MBPS: Final = {
    2: 12_500,
    4: 12_500,
    8: 12_500,
    16: 12_500,
    32: 16_000,
    48: 24_000,
    64: 30_000,
    96: 35_000,
}
"""Dsv5 network bandwidth by vCPUs."""


def _dsv5(vcpu: int) -> InstanceTypeInfo:
    """Dsv5: Intel Xeon general purpose, 4 GiB per vCPU, no GPU (the AKS system pool's kind)."""
    return InstanceTypeInfo(
        gpus=0, vcpu=vcpu, memory_gib=4 * vcpu, network_mbps=DSV5_NETWORK_MBPS[vcpu], pool=f"d{vcpu}sv5"
    )


CATALOGUE: Final[dict[InstanceType, InstanceTypeInfo]] = {
    InstanceType.NC40ADIS_H100_V5: InstanceTypeInfo(
        gpus=1,
        gpu_model="H100 NVL",
        gpu_memory_gib=94,
        vcpu=40,
        memory_gib=320,
        network_mbps=40_000,
        pool="nc40h100",
    ),
    InstanceType.NC80ADIS_H100_V5: InstanceTypeInfo(
        gpus=2,
        gpu_model="H100 NVL",
        gpu_memory_gib=94,
        vcpu=80,
        memory_gib=640,
        network_mbps=80_000,
        pool="nc80h100",
    ),
    InstanceType.ND96ISR_H100_V5: InstanceTypeInfo(
        gpus=8,
        gpu_model="H100 SXM",
        gpu_memory_gib=80,
        vcpu=96,
        memory_gib=1900,
        network_mbps=80_000,
        pool="nd96h100",
        infiniband=True,
    ),
    InstanceType.ND96ISR_H200_V5: InstanceTypeInfo(
        gpus=8,
        gpu_model="H200 SXM",
        gpu_memory_gib=141,
        vcpu=96,
        memory_gib=1850,
        network_mbps=80_000,
        pool="nd96h200",
        infiniband=True,
    ),
    InstanceType.ND96ASR_V4: InstanceTypeInfo(
        gpus=8,
        gpu_model="A100 SXM",
        gpu_memory_gib=40,
        vcpu=96,
        memory_gib=900,
        network_mbps=24_000,
        pool="nd96a100",
        infiniband=True,
    ),
    InstanceType.ND96AMSR_A100_V4: InstanceTypeInfo(
        gpus=8,
        gpu_model="A100 SXM",
        gpu_memory_gib=80,
        vcpu=96,
        memory_gib=1900,
        network_mbps=24_000,
        pool="nd96ma100",
        infiniband=True,
    ),
    InstanceType.NC24ADS_A100_V4: InstanceTypeInfo(
        gpus=1,
        gpu_model="A100 PCIe",
        gpu_memory_gib=80,
        vcpu=24,
        memory_gib=220,
        network_mbps=20_000,
        pool="nc24a100",
    ),
    InstanceType.NC48ADS_A100_V4: InstanceTypeInfo(
        gpus=2,
        gpu_model="A100 PCIe",
        gpu_memory_gib=80,
        vcpu=48,
        memory_gib=440,
        network_mbps=40_000,
        pool="nc48a100",
    ),
    InstanceType.NC96ADS_A100_V4: InstanceTypeInfo(
        gpus=4,
        gpu_model="A100 PCIe",
        gpu_memory_gib=80,
        vcpu=96,
        memory_gib=880,
        network_mbps=80_000,
        pool="nc96a100",
    ),
    InstanceType.D2S_V5: _dsv5(2),
    InstanceType.D4S_V5: _dsv5(4),
    InstanceType.D8S_V5: _dsv5(8),
    InstanceType.D16S_V5: _dsv5(16),
    InstanceType.D32S_V5: _dsv5(32),
    InstanceType.D48S_V5: _dsv5(48),
    InstanceType.D64S_V5: _dsv5(64),
    InstanceType.D96S_V5: _dsv5(96),
}


def info(instance_type: InstanceType | str) -> InstanceTypeInfo:
    """The catalogue entry of a VM size; a clear error for a size modelfleet does not know."""
    try:
        return CATALOGUE[InstanceType(instance_type)]
    except ValueError:
        allowed = ", ".join(t.value for t in InstanceType)
        raise ValueError(f"unknown instance type {instance_type!r}; allowed: {allowed}") from None


def gpu_instance_types() -> list[InstanceType]:
    return [name for name, entry in CATALOGUE.items() if entry.is_gpu]


def cpu_instance_types() -> list[InstanceType]:
    return [name for name, entry in CATALOGUE.items() if not entry.is_gpu]


def gpus_by_instance_type_cel() -> str:
    """A CEL map literal from GPU VM size to GPUs, for rules that check a GPU count against the size."""
    entries = ", ".join(f"'{name.value}': {CATALOGUE[name].gpus}" for name in gpu_instance_types())
    return "{" + entries + "}"


def cpu_instance_types_cel() -> str:
    """A CEL list literal of the CPU VM sizes, for rules that refuse GPU-only settings on them."""
    return "[" + ", ".join(f"'{name.value}'" for name in cpu_instance_types()) + "]"


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
"""Every GPU pool is tainted ``sku=gpu:NoSchedule`` so only GPU workloads land there; CPU pools are not."""
