"""What the capacity manager is asked for on behalf of a ModelDeployment (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelfleet_api import instance_types as it
from modelfleet_api.modeldeployment import ServingResources

from modelfleet_operator.serving.policies.pods import live

Manifest = dict[str, Any]
FINISHED_PHASES = ("Succeeded", "Failed")


def nodes_for_replicas(resources: ServingResources, replicas: int) -> int:
    """Nodes of the chosen VM size that hold ``replicas`` pods of ``gpusPerReplica`` GPUs each (one
    per node on a CPU size, where a replica asks for most of the VM)."""
    gpus = resources.gpus_per_replica
    per_node = max(it.info(resources.instance_type).gpus // gpus, 1) if gpus else 1
    return math.ceil(replicas / per_node)


def pods_scheduled(pods: Sequence[Manifest], desired: int) -> bool:
    """Whether ``desired`` live server pods are bound to nodes (so no capacity is missing)."""
    bound = [
        p
        for p in live(pods)
        if (p.get("spec") or {}).get("nodeName")
        and (p.get("status") or {}).get("phase") not in FINISHED_PHASES
    ]
    return len(bound) >= desired
