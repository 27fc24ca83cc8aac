"""The capacity manager through the real Azure SDK against the fake ARM server (tests/fakes/arm.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from modelfleet_api import constants as c
from modelfleet_api.common import NodePlacement
from modelfleet_api.instance_types import InstanceType
from modelfleet_operator.capacity.arm import AgentPools
from modelfleet_operator.capacity.manager import CapacityCondition, CapacityManager
from modelfleet_operator.capacity.settings import CapacitySettings

from hack.controlplane.cluster import wait_for
from tests.fakes.arm import TOKEN, FakeArm, Fault

pytestmark = pytest.mark.unit

POOLS_PATH = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
QUOTA_MESSAGE = (
    "Operation could not be completed as it results in exceeding approved standardNCADSH100v5Family "
    "Cores quota. Additional details - Deployment Model: Resource Manager, Location: eastus2, Current "
    "Limit: 40, Current Usage: 40, Additional Required: 80."
)


class StaticCredential:
    """A TokenCredential handing out the fake's token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[FakeArm]:
    fake = FakeArm(tmp_path).start()
    fake.add_pool("nd96h100", InstanceType.ND96ISR_H100_V5.value, max_count=2)
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager(arm: FakeArm, clock: Clock) -> Iterator[CapacityManager]:
    settings = CapacitySettings(
        subscription_id="sub",
        resource_group="rg",
        cluster_name="aks",
        max_nodes={InstanceType.ND96ISR_H100_V5: 4, InstanceType.NC40ADIS_H100_V5: 2},
        idle_seconds=600,
        pool_cache_seconds=0,
        error_backoff_seconds=120,
        arm_endpoint=arm.url,
    )
    pools = AgentPools(settings, StaticCredential(), connection_verify=str(arm.cert))
    found = CapacityManager(settings, pools, clock=clock)
    yield found
    found.stop()


def placement(size: InstanceType, **extra: Any) -> NodePlacement:
    return NodePlacement(instance_type=size, **extra)


def settled(manager: CapacityManager, key: str, where: NodePlacement, nodes: int) -> list[CapacityCondition]:
    """Ask until AKS's long-running operation finished; the conditions of the pass that saw it."""
    found: list[CapacityCondition] = []

    def done() -> bool:
        nonlocal found
        found = manager.ensure(key, where, nodes, scheduled=False)
        return found[0].reason == c.REASON_WAITING_FOR_NODES

    wait_for(done, 20, "the pool operation to finish")
    return found


def test_missing_pool_is_created_autoscaling_from_zero_with_gpu_and_spot_taints(
    arm: FakeArm, manager: CapacityManager
) -> None:
    spot_nc40 = placement(InstanceType.NC40ADIS_H100_V5, spot=True)
    asked = manager.ensure("uid-1", spot_nc40, 2, scheduled=False)

    message = "Creating AKS pool 'nc40h100spot' of spot Standard_NC40adis_H100_v5, autoscaling 0 to 2 nodes."
    assert asked == [
        CapacityCondition(c.COND_CAPACITY_REQUESTED, True, c.REASON_POOL_CREATING, message),
        CapacityCondition(
            c.COND_CAPACITY_READY, False, c.REASON_POOL_PROVISIONING, f"Waiting for AKS: {message}"
        ),
    ]
    (put,) = arm.puts()
    assert put.path.startswith(f"{POOLS_PATH}/agentPools/nc40h100spot?api-version=")
    assert put.authorization == f"Bearer {TOKEN}"
    assert put.body == {
        "properties": {
            "vmSize": "Standard_NC40adis_H100_v5",
            "mode": "User",
            "osType": "Linux",
            "type": "VirtualMachineScaleSets",
            "enableAutoScaling": True,
            "count": 0,
            "minCount": 0,
            "maxCount": 2,
            "scaleSetPriority": "Spot",
            "scaleSetEvictionPolicy": "Delete",
            "spotMaxPrice": -1,
            "nodeTaints": ["sku=gpu:NoSchedule", "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"],
            "nodeLabels": {"kubernetes.azure.com/scalesetpriority": "spot"},
            "tags": {"modelfleet-managed": "true", "modelfleet-baseline-max-count": "1"},
        }
    }
    after = settled(manager, "uid-1", spot_nc40, 2)
    assert after[0].reason == c.REASON_WAITING_FOR_NODES
    assert arm.pools["nc40h100spot"]["properties"]["provisioningState"] == "Succeeded"
    assert len(arm.puts()) == 1, "a pool that fits is not written again"
    assert manager.ensure("uid-1", spot_nc40, 2, scheduled=True)[0] == CapacityCondition(
        c.COND_CAPACITY_READY,
        True,
        c.REASON_CAPACITY_AVAILABLE,
        "All pods are on spot Standard_NC40adis_H100_v5 nodes.",
    )


def test_requests_add_up_and_raise_the_maximum_then_an_idle_pool_shrinks_back(
    arm: FakeArm, manager: CapacityManager, clock: Clock
) -> None:
    nd96 = placement(InstanceType.ND96ISR_H100_V5)
    assert manager.ensure("a", nd96, 2, scheduled=False)[0].reason == c.REASON_WAITING_FOR_NODES
    raised = manager.ensure("b", nd96, 2, scheduled=False)
    assert raised[0] == CapacityCondition(
        c.COND_CAPACITY_REQUESTED,
        True,
        c.REASON_POOL_SCALING_UP,
        "Raising the autoscaler maximum of AKS pool 'nd96h100' from 2 to 4 nodes.",
    )
    settled(manager, "b", nd96, 2)
    properties = arm.pools["nd96h100"]["properties"]
    assert (properties["maxCount"], properties["tags"]) == (4, {"modelfleet-baseline-max-count": "2"})
    ceiling = manager.ensure("c", nd96, 1, scheduled=False)
    assert ceiling[0].reason == c.REASON_CEILING_REACHED and ceiling[0].status is False

    for key in ("a", "b", "c"):
        manager.release(key)
    assert manager.shrink_idle() == [], "asked for a moment ago: not idle yet"
    clock.now += 601
    assert manager.shrink_idle() == ["nd96h100"]
    wait_for(lambda: arm.pools["nd96h100"]["properties"]["maxCount"] == 2, 10, "the maximum back at 2")


def test_quota_refusal_is_surfaced_with_azures_text_and_not_retried_before_the_backoff(
    arm: FakeArm, manager: CapacityManager, clock: Clock
) -> None:
    arm.fail_next("PUT", Fault(400, {"error": {"code": "QuotaExceeded", "message": QUOTA_MESSAGE}}))
    nc40 = placement(InstanceType.NC40ADIS_H100_V5)
    refused = manager.ensure("q", nc40, 1, scheduled=False)
    text = f"Azure refused the Standard_NC40adis_H100_v5 pool request: QuotaExceeded: {QUOTA_MESSAGE}"
    assert refused == [
        CapacityCondition(
            c.COND_CAPACITY_REQUESTED, False, c.REASON_QUOTA_EXCEEDED, f"{text}. Asking again in 120s."
        ),
        CapacityCondition(c.COND_QUOTA_EXCEEDED, True, c.REASON_QUOTA_EXCEEDED, text),
    ]
    requests = len(arm.requests)
    assert manager.ensure("q", nc40, 1, scheduled=False) == refused
    assert len(arm.requests) == requests, "no Azure call during the backoff"

    clock.now += 121
    retried = manager.ensure("q", nc40, 1, scheduled=False)
    assert retried[0].reason == c.REASON_POOL_CREATING
    assert len(arm.puts()) == 2


def test_throttling_is_retried_by_the_sdk_and_then_waits_for_retry_after(
    arm: FakeArm, manager: CapacityManager, clock: Clock
) -> None:
    body = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    throttled = Fault(429, body, {"Retry-After": "1"})
    arm.fail_next("GET", throttled)
    nd96 = placement(InstanceType.ND96ISR_H100_V5)
    assert manager.ensure("t", nd96, 1, scheduled=False)[0].reason == c.REASON_WAITING_FOR_NODES

    arm.fail_next("GET", throttled, times=4)  # more than the SDK's retries
    (gave_up,) = manager.ensure("t", nd96, 1, scheduled=False)
    assert (gave_up.type, gave_up.reason) == (c.COND_CAPACITY_REQUESTED, c.REASON_AZURE_THROTTLED)
    assert gave_up.message.endswith("TooManyRequests: slow down. Asking again in 1s.")
    clock.now += 2
    assert manager.ensure("t", nd96, 1, scheduled=False)[0].reason == c.REASON_WAITING_FOR_NODES
