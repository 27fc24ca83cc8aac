"""Settings of the capacity manager, from environment variables (what the chart sets).

``MODELFLEET_CAPACITY_MANAGER=azure`` turns it on; it then needs the cluster's coordinates
(``AZURE_SUBSCRIPTION_ID``, ``MODELFLEET_AKS_RESOURCE_GROUP``, ``MODELFLEET_AKS_CLUSTER``) and a node
ceiling per VM size it may manage (``MODELFLEET_CAPACITY_MAX_NODES``, e.g.
``Standard_ND96isr_H100_v5=4,Standard_NC40adis_H100_v5=8``). Sizes without a ceiling are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from modelfleet_api.instance_types import InstanceType, info

PROVIDER_AZURE = "azure"


@dataclass(frozen=True, kw_only=True)
class CapacitySettings:
    subscription_id: str
    resource_group: str
    cluster_name: str
    max_nodes: dict[InstanceType, int] = field(default_factory=dict)
    """Per VM size, the most nodes the manager lets the maxima of its pools add up to."""
    idle_seconds: float = 1800.0
    """After this long without a resource asking for a pool, its maximum goes back to where it was
    (``MODELFLEET_CAPACITY_IDLE_SECONDS``)."""
    pool_cache_seconds: float = 30.0
    """How long a listing of the pools is reused (``MODELFLEET_CAPACITY_CACHE_SECONDS``); ARM reads are
    rate-limited per subscription and every pass of every waiting resource asks."""
    error_backoff_seconds: float = 300.0
    """Wait before asking again for a pool Azure refused (quota, SKU) or failed
    (``MODELFLEET_CAPACITY_BACKOFF_SECONDS``); a throttled request waits Azure's Retry-After instead."""
    arm_endpoint: str | None = None
    """Azure Resource Manager URL (``MODELFLEET_ARM_ENDPOINT``); unset: the public cloud's."""


def _ceilings(text: str) -> dict[InstanceType, int]:
    ceilings: dict[InstanceType, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        size, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit():
            raise ValueError(f"MODELFLEET_CAPACITY_MAX_NODES: {item!r} is not VM_SIZE=COUNT")
        info(size.strip())  # a clear error for an unknown size
        ceilings[InstanceType(size.strip())] = int(count)
    return ceilings


def load_capacity_settings(env: Mapping[str, str]) -> CapacitySettings | None:
    """None when the manager is off; a ValueError naming the variable when it is on but incomplete."""
    provider = env.get("MODELFLEET_CAPACITY_MANAGER", "").strip().lower()
    if not provider:
        return None
    if provider != PROVIDER_AZURE:
        raise ValueError(f"MODELFLEET_CAPACITY_MANAGER={provider!r}: the only provider is {PROVIDER_AZURE!r}")
    required = ("AZURE_SUBSCRIPTION_ID", "MODELFLEET_AKS_RESOURCE_GROUP", "MODELFLEET_AKS_CLUSTER")
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise ValueError(f"MODELFLEET_CAPACITY_MANAGER=azure needs {', '.join(missing)}")
    defaults = CapacitySettings(subscription_id="", resource_group="", cluster_name="")
    return CapacitySettings(
        subscription_id=env["AZURE_SUBSCRIPTION_ID"],
        resource_group=env["MODELFLEET_AKS_RESOURCE_GROUP"],
        cluster_name=env["MODELFLEET_AKS_CLUSTER"],
        max_nodes=_ceilings(env.get("MODELFLEET_CAPACITY_MAX_NODES", "")),
        idle_seconds=float(env.get("MODELFLEET_CAPACITY_IDLE_SECONDS", defaults.idle_seconds)),
        pool_cache_seconds=float(env.get("MODELFLEET_CAPACITY_CACHE_SECONDS", defaults.pool_cache_seconds)),
        error_backoff_seconds=float(
            env.get("MODELFLEET_CAPACITY_BACKOFF_SECONDS", defaults.error_backoff_seconds)
        ),
        arm_endpoint=env.get("MODELFLEET_ARM_ENDPOINT") or None,
    )
