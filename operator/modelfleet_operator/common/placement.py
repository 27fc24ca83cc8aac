"""Node selection, tolerations and container resources of a pod pinned to an AKS VM size (pure).

A pod on a GPU size requests its GPUs and tolerates the GPU pools' taint; a pod on a CPU size does
neither (CPU pools are not tainted), and asks for most of the VM, as one worker per node does.
"""

from __future__ import annotations

import math
from typing import Any

from modelfleet_api import instance_types as it
from modelfleet_api.common import NodePlacement

DEFAULT_SHARE_OF_NODE = 0.9
"""Without explicit cpu/memory a pod asks for this share of its GPUs' part of the VM, or of a CPU VM
(the rest is left to the kubelet, the GPU driver daemonsets and the CNI); the TrainingJob workers use
the same."""


def resources(placement: NodePlacement, gpus: int) -> dict[str, dict[str, str]]:
    vm = it.info(placement.instance_type)
    share = (gpus / vm.gpus if vm.is_gpu else 1) * DEFAULT_SHARE_OF_NODE
    cpu = placement.cpu or str(max(math.floor(vm.vcpu * share), 1))
    memory = placement.memory or f"{math.floor(vm.memory_gib * share)}Gi"
    amounts = {"cpu": cpu, "memory": memory}
    if vm.is_gpu:
        amounts[it.GPU_RESOURCE] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def pod_placement(placement: NodePlacement) -> dict[str, Any]:
    """``nodeSelector``, ``tolerations`` and, for spot, a required node affinity."""
    node_selector = (
        {it.NODE_LABEL_AGENTPOOL: placement.node_pool}
        if placement.node_pool
        else {it.NODE_LABEL_INSTANCE_TYPE: placement.instance_type.value}
    )
    gpu_toleration = {"key": it.GPU_TAINT_KEY, "operator": "Equal", "value": it.GPU_TAINT_VALUE}
    tolerations: list[dict[str, str]] = (
        [] if placement.on_cpu else [gpu_toleration | {"effect": "NoSchedule"}]
    )
    result: dict[str, Any] = {"nodeSelector": node_selector}
    if placement.spot:
        tolerations.append(
            {"key": it.SPOT_TAINT_KEY, "operator": "Equal", "value": it.SPOT_PRIORITY, "effect": "NoSchedule"}
        )
        spot_term = {
            "matchExpressions": [
                {"key": it.NODE_LABEL_SCALESET_PRIORITY, "operator": "In", "values": [it.SPOT_PRIORITY]}
            ]
        }
        result["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [spot_term]}
            }
        }
    if tolerations:
        result["tolerations"] = tolerations
    return result
