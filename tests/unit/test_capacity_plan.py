"""Capacity decisions (pure) and the capacity manager's settings."""

from __future__ import annotations

import pytest
from modelfleet_api import constants as c
from modelfleet_api.instance_types import InstanceType
from modelfleet_operator.capacity.plan import (
    TAG_BASELINE_MAX,
    Blocked,
    CreatePool,
    Fits,
    PoolState,
    RaiseMax,
    Want,
    decide,
    shrink_target,
)
from modelfleet_operator.capacity.settings import load_capacity_settings

pytestmark = pytest.mark.unit

ND96 = InstanceType.ND96ISR_H100_V5
NC40 = InstanceType.NC40ADIS_H100_V5
NC80 = InstanceType.NC80ADIS_H100_V5


def pool(name: str, size: InstanceType, max_count: int, **extra: object) -> PoolState:
    return PoolState(name=name, vm_size=size.value, max_count=max_count, **extra)  # type: ignore[arg-type]


def test_no_pool_of_the_size_creates_one_named_as_in_the_design() -> None:
    assert decide([pool("nd96h100", ND96, 4)], Want(instance_type=NC40), 2, 8) == CreatePool("nc40h100", 2)
    assert decide([], Want(instance_type=NC80, spot=True), 1, 4) == CreatePool("nc80h100", 1)
    assert decide([], Want(instance_type=NC40, spot=True), 1, 4) == CreatePool("nc40h100spot", 1)
    assert decide([], Want(instance_type=NC40, pool_name="mine"), 1, 4) == CreatePool("mine", 1)


def test_spot_and_regular_pools_do_not_stand_in_for_each_other() -> None:
    spot = pool("nc80h100", NC80, 4, priority="Spot")
    assert decide([spot], Want(instance_type=NC80, spot=True), 3, 4) == Fits("nc80h100", 4)
    assert decide([spot], Want(instance_type=NC80), 1, 4) == CreatePool("nc80h100reg", 1)
    assert decide([spot], Want(instance_type=NC80, pool_name="nc80h100"), 1, 4) == Blocked(
        c.REASON_POOL_CONFLICT,
        "Pool 'nc80h100' exists with Spot Standard_NC80adis_H100_v5, not Standard_NC80adis_H100_v5; "
        "set resources.nodePool to a free name for a new pool.",
    )


def test_too_small_maximum_is_raised_within_the_ceiling() -> None:
    pools = [pool("nd96h100", ND96, 2), pool("nd96b", ND96, 1)]
    assert decide(pools, Want(instance_type=ND96), 3, 8) == Fits("nd96h100", 3)
    assert decide(pools, Want(instance_type=ND96), 5, 8) == RaiseMax("nd96h100", 2, 4)
    over = decide(pools, Want(instance_type=ND96), 9, 8)
    assert isinstance(over, Blocked) and over.reason == c.REASON_CEILING_REACHED
    assert "9 Standard_ND96isr_H100_v5 nodes" in over.message and "ceiling of 8" in over.message


def test_sizes_without_a_ceiling_and_fixed_size_pools_are_left_alone() -> None:
    unmanaged = decide([], Want(instance_type=ND96), 1, None)
    assert isinstance(unmanaged, Blocked) and unmanaged.reason == c.REASON_NOT_MANAGED
    fixed = pool("nd96h100", ND96, 0, autoscaling=False, count=2)
    assert decide([fixed], Want(instance_type=ND96), 2, 8) == Fits("nd96h100", 2)
    blocked = decide([fixed], Want(instance_type=ND96), 3, 8)
    assert isinstance(blocked, Blocked) and blocked.reason == c.REASON_NOT_MANAGED


def test_idle_pool_shrinks_to_its_baseline_but_never_below_its_nodes() -> None:
    raised = {TAG_BASELINE_MAX: "2"}
    assert shrink_target(pool("a", ND96, 6, tags=raised)) == 2
    assert shrink_target(pool("a", ND96, 6, tags=raised, count=3)) == 3
    assert shrink_target(pool("a", ND96, 2, tags=raised)) is None
    assert shrink_target(pool("a", ND96, 6)) is None  # never raised by the manager: not ours to shrink


def test_settings_from_the_environment() -> None:
    assert load_capacity_settings({}) is None
    settings = load_capacity_settings(
        {
            "MODELFLEET_CAPACITY_MANAGER": "azure",
            "AZURE_SUBSCRIPTION_ID": "sub",
            "MODELFLEET_AKS_RESOURCE_GROUP": "rg",
            "MODELFLEET_AKS_CLUSTER": "aks",
            "MODELFLEET_CAPACITY_MAX_NODES": "Standard_ND96isr_H100_v5=4, Standard_NC40adis_H100_v5=8",
            "MODELFLEET_CAPACITY_IDLE_SECONDS": "600",
        }
    )
    assert settings is not None
    assert settings.max_nodes == {ND96: 4, NC40: 8}
    assert (settings.idle_seconds, settings.arm_endpoint) == (600.0, None)
    with pytest.raises(ValueError, match="needs AZURE_SUBSCRIPTION_ID, MODELFLEET_AKS_CLUSTER"):
        load_capacity_settings(
            {"MODELFLEET_CAPACITY_MANAGER": "azure", "MODELFLEET_AKS_RESOURCE_GROUP": "rg"}
        )
    with pytest.raises(ValueError, match="unknown instance type"):
        load_capacity_settings(
            {
                "MODELFLEET_CAPACITY_MANAGER": "azure",
                "AZURE_SUBSCRIPTION_ID": "s",
                "MODELFLEET_AKS_RESOURCE_GROUP": "rg",
                "MODELFLEET_AKS_CLUSTER": "aks",
                "MODELFLEET_CAPACITY_MAX_NODES": "Standard_A1=3",
            }
        )
