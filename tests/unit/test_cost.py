"""Cost accounting: the VM shares pods hold (GPUs over the VM's GPUs, or one node per pod on a CPU
size), the list price of the size and priority from the operator's price table, the running total,
and a sweep's sum over the deployments it created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from modelfleet_api.common import NodePlacement
from modelfleet_api.cost import CostStatus, PriceTable
from modelfleet_api.instance_types import InstanceType
from modelfleet_operator.common.cost import account, price, total_cost, vm_share
from modelfleet_operator.config import load_config

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TABLE = PriceTable.model_validate(
    {
        "currency": "USD",
        "source": "test prices",
        "sizes": {"Standard_NC80adis_H100_v5": {"onDemand": 17.64}, "Standard_D8s_v5": {"onDemand": 0.5}},
    }
)
NC80 = NodePlacement(instance_type=InstanceType.NC80ADIS_H100_V5)
NC80_SPOT = NodePlacement(instance_type=InstanceType.NC80ADIS_H100_V5, spot=True)
D8 = NodePlacement(instance_type=InstanceType.D8S_V5)


def test_vm_shares_are_gpus_over_the_vms_gpus_or_one_node_per_pod_on_a_cpu_size() -> None:
    assert vm_share(NC80, pods=3, gpus_per_pod=1) == 1.5
    assert vm_share(NC80, pods=2, gpus_per_pod=2) == 2.0
    assert vm_share(D8, pods=2, gpus_per_pod=0) == 2.0


def test_the_price_of_a_size_and_priority_or_why_there_is_none() -> None:
    assert price(TABLE, NC80) == (
        17.64,
        "Standard_NC80adis_H100_v5 on-demand at 17.64 USD per VM-hour; test prices",
    )
    assert price(TABLE, NC80_SPOT) == (
        None,
        "the operator's price table has no spot price for Standard_NC80adis_H100_v5 (chart value pricing)",
    )
    assert price(None, D8) == (None, "the operator has no price table (chart value pricing)")


def test_the_total_grows_with_the_shares_held_and_the_time() -> None:
    started = account(None, vms_now=1.5, now=T0, table=TABLE, placement=NC80, writing=True)
    assert started is not None
    assert (started.vm_hours, started.amount, started.vms, started.updated_at) == (0.0, 0.0, 1.5, T0)
    assert account(None, vms_now=0.0, now=T0, table=TABLE, placement=NC80, writing=True) is None

    quiet = account(
        started, vms_now=1.5, now=T0 + timedelta(seconds=30), table=TABLE, placement=NC80, writing=True
    )
    assert quiet == started, "at most once a minute while nothing changes"

    hour = account(
        started, vms_now=1.5, now=T0 + timedelta(hours=1), table=TABLE, placement=NC80, writing=True
    )
    assert hour is not None and (hour.vm_hours, hour.amount, hour.currency) == (1.5, 26.46, "USD")

    stopped = account(
        hour, vms_now=0.0, now=T0 + timedelta(hours=2), table=TABLE, placement=NC80, writing=False
    )
    assert stopped is not None
    assert (stopped.vm_hours, stopped.amount, stopped.vms, stopped.updated_at) == (3.0, 52.92, 0.0, None)

    unpriced = account(
        hour, vms_now=0.0, now=T0 + timedelta(hours=2), table=None, placement=NC80, writing=True
    )
    assert (unpriced.vm_hours, unpriced.amount, unpriced.currency) == (3.0, None, None), (
        "never a made-up price"
    )


def test_a_sweep_adds_up_its_deployments() -> None:
    one = CostStatus(amount=2.0, currency="USD", vm_hours=1.0, basis="a")
    two = CostStatus(amount=3.5, currency="USD", vm_hours=0.5, vms=1.0, updated_at=T0, basis="b")
    assert total_cost([one, two]) == CostStatus(
        amount=5.5, currency="USD", vm_hours=1.5, vms=1.0, updated_at=T0, basis="a; b"
    )
    assert total_cost([one, CostStatus(vm_hours=1.0, basis="unpriced")]).amount is None  # type: ignore[union-attr]
    assert total_cost([]) is None


def test_the_price_table_comes_from_the_environment_and_a_wrong_one_stops_the_operator() -> None:
    config = load_config([], {"MODELFLEET_PRICES": TABLE.model_dump_json(by_alias=True)})
    assert config.prices == TABLE
    with pytest.raises(SystemExit, match="MODELFLEET_PRICES is not a valid price table"):
        load_config([], {"MODELFLEET_PRICES": '{"sizes": {"Standard_X1": {"onDemand": 1}}}'})
