"""AKS agent pools through the Azure SDK (``ContainerServiceClient.agent_pools``), and Azure's errors
sorted into what the manager does about them.

Authentication is ``DefaultAzureCredential``: in AKS it picks up workload identity from the pod's
environment, so the chart needs no secret. Writes are long-running operations; :meth:`AgentPools.put`
returns the SDK's poller, which polls in its own thread, so a reconcile pass never waits for AKS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.polling import LROPoller
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool
from modelfleet_api import constants as c
from modelfleet_api import instance_types as it

from modelfleet_operator.capacity.plan import (
    CREATED_BASELINE_MAX,
    PRIORITY_REGULAR,
    PRIORITY_SPOT,
    TAG_BASELINE_MAX,
    TAG_MANAGED,
    PoolState,
    Want,
)
from modelfleet_operator.capacity.settings import CapacitySettings

RETRIES: Final = 3
"""SDK retries per call (429 and 5xx, honouring Retry-After); the manager's own backoff takes over after."""
THROTTLED: Final = 429
QUOTA_CODES: Final = frozenset(
    {"QuotaExceeded", "ErrCode_InsufficientVCPUQuota", "InsufficientVCPUQuota", "OperationNotAllowed"}
)
SKU_CODES: Final = frozenset(
    {
        "SkuNotAvailable",
        "VMSizeNotSupported",
        "ZonalAllocationFailed",
        "AllocationFailed",
        "OverconstrainedAllocationRequest",
    }
)


@dataclass(frozen=True)
class AzureProblem:
    """An Azure error as the manager reports it: which condition reason, Azure's text, when to retry."""

    reason: str
    code: str
    message: str
    retry_after: float | None = None

    @property
    def quota(self) -> bool:
        return self.reason in (c.REASON_QUOTA_EXCEEDED, c.REASON_SKU_NOT_AVAILABLE)


def classify(error: AzureError) -> AzureProblem:
    """Sort an SDK error: quota and SKU refusals, throttling (with its Retry-After), anything else."""
    code = "Unknown"
    message = str(error.message or error)
    status: int | None = None
    retry_after: float | None = None
    if isinstance(error, HttpResponseError):
        status = error.status_code
        odata = error.error
        if odata is not None:
            code = odata.code or code
            message = odata.message or message
        elif status is not None:
            code = str(status)
        if error.response is not None:
            header = getattr(error.response, "headers", {}).get("Retry-After")
            retry_after = float(header) if header and header.strip().isdigit() else None
    else:
        code = type(error).__name__
    if status == THROTTLED:
        return AzureProblem(c.REASON_AZURE_THROTTLED, code, message, retry_after)
    if code in QUOTA_CODES or "quota" in message.lower():
        return AzureProblem(c.REASON_QUOTA_EXCEEDED, code, message)
    if code in SKU_CODES:
        return AzureProblem(c.REASON_SKU_NOT_AVAILABLE, code, message)
    return AzureProblem(c.REASON_AZURE_ERROR, code, message, retry_after)


def new_pool(want: Want, name: str, max_count: int) -> AgentPool:
    """A user pool autoscaling from 0, tainted and labelled as the Terraform module makes them (the
    GPU taint on GPU sizes only: CPU pods do not tolerate it)."""
    gpu = it.info(want.instance_type).is_gpu
    taints = [f"{it.GPU_TAINT_KEY}={it.GPU_TAINT_VALUE}:NoSchedule"] if gpu else []
    labels: dict[str, str] = {}
    spot: dict[str, Any] = {}
    if want.spot:
        taints.append(f"{it.SPOT_TAINT_KEY}={it.SPOT_PRIORITY}:NoSchedule")
        labels[it.NODE_LABEL_SCALESET_PRIORITY] = it.SPOT_PRIORITY
        spot = {"scale_set_eviction_policy": "Delete", "spot_max_price": -1}
    pool: AgentPool = AgentPool(  # type: ignore[call-overload]  # flattened properties, untyped in the SDK
        vm_size=want.instance_type.value,
        mode="User",
        os_type="Linux",
        type_properties_type="VirtualMachineScaleSets",
        enable_auto_scaling=True,
        count=0,
        min_count=0,
        max_count=max_count,
        scale_set_priority=want.priority,
        node_taints=taints,
        node_labels=labels,
        tags={TAG_MANAGED: "true", TAG_BASELINE_MAX: str(CREATED_BASELINE_MAX)},
        **spot,
    )
    return pool


def pool_state(pool: AgentPool) -> PoolState:
    return PoolState(
        name=str(pool.name),
        vm_size=str(pool.vm_size),
        priority=PRIORITY_SPOT if pool.scale_set_priority == PRIORITY_SPOT else PRIORITY_REGULAR,
        autoscaling=bool(pool.enable_auto_scaling),
        count=pool.count or 0,
        min_count=pool.min_count,
        max_count=pool.max_count,
        provisioning_state=str(pool.provisioning_state or "Succeeded"),
        tags=dict(pool.tags or {}),
    )


class AgentPools:
    """The agent pools of one AKS cluster."""

    def __init__(
        self, settings: CapacitySettings, credential: TokenCredential | None = None, **client_options: Any
    ) -> None:
        options: dict[str, Any] = {"retry_total": RETRIES, **client_options}
        if settings.arm_endpoint:
            options["base_url"] = settings.arm_endpoint
        self._client = ContainerServiceClient(
            credential or DefaultAzureCredential(), settings.subscription_id, **options
        )
        self._group = settings.resource_group
        self._cluster = settings.cluster_name

    def list(self) -> list[PoolState]:
        return [pool_state(pool) for pool in self._client.agent_pools.list(self._group, self._cluster)]

    def create(self, want: Want, name: str, max_count: int) -> LROPoller[AgentPool]:
        return self._put(name, new_pool(want, name, max_count))

    def set_max_count(self, name: str, max_count: int, *, remember_baseline: bool) -> LROPoller[AgentPool]:
        """Read-modify-write of the pool's autoscaler maximum (a PUT carries the whole pool). With
        ``remember_baseline`` the old maximum is kept in a tag, unless one is there already."""
        pool = self._client.agent_pools.get(self._group, self._cluster, name)
        tags = dict(pool.tags or {})
        if remember_baseline and pool.max_count is not None:
            tags.setdefault(TAG_BASELINE_MAX, str(pool.max_count))
        pool.tags = tags
        pool.max_count = max_count
        return self._put(name, pool)

    def _put(self, name: str, pool: AgentPool) -> LROPoller[AgentPool]:
        return self._client.agent_pools.begin_create_or_update(self._group, self._cluster, name, pool)

    def close(self) -> None:
        self._client.close()
