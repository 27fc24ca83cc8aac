"""What the workloads cost: VM-hours used times a list price per VM size and priority.

A TrainingJob or ModelDeployment uses the VM shares its scheduled pods hold: on a GPU size the GPUs
its pods hold over the GPUs of the VM (GPU-hours / GPUs per VM), on a CPU size one node per pod. The
operator adds up the share held times the time it was held (``status.cost.vmHours``) and multiplies by
the price of one VM-hour of that size and priority (spot or on-demand) from its price table
(``PriceTable``, chart value ``pricing``): list prices, which a user overrides with their own. A
BenchmarkSweep costs what the deployments it created (templates) cost while it measured them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from modelfleet_api.base import ApiModel
from modelfleet_api.instance_types import InstanceType


class SizePrice(ApiModel):
    """Price of one VM-hour of a size."""

    on_demand: float | None = Field(default=None, gt=0.0)
    """Pay-as-you-go price; unset: not priced."""

    spot: float | None = Field(default=None, gt=0.0)
    """Spot price; unset: not priced."""


class PriceTable(ApiModel):
    """The operator's prices (``MODELFLEET_PRICES``, JSON; chart value ``pricing``)."""

    currency: str = Field(default="USD", min_length=3, max_length=3, pattern="^[A-Z]{3}$")
    """ISO 4217 code of every price."""

    source: str = Field(default="", max_length=512)
    """Where the prices come from and as of when (said in every cost's basis)."""

    sizes: dict[InstanceType, SizePrice] = Field(default_factory=dict)
    """Price per VM size."""


class CostStatus(ApiModel):
    """What the resource has cost so far."""

    amount: float | None = Field(default=None, ge=0.0)
    """`vmHours` times the price per VM-hour, in `currency`; unset when the operator's price table has no
    price for the size and priority (`basis` says so)."""

    currency: str | None = None
    """ISO 4217 code of `amount`."""

    vm_hours: float = Field(default=0.0, ge=0.0)
    """VM-hours used: GPU-hours over the GPUs of one VM on a GPU size, node-hours on a CPU size."""

    vms: float = Field(default=0.0, ge=0.0)
    """VMs (or shares of one) held now; added to `vmHours` with the time since `updatedAt` at the next
    update."""

    updated_at: datetime | None = None
    """When `vmHours` and `amount` were last brought up to date."""

    basis: str = ""
    """How `amount` is computed: size, priority, price per VM-hour and the price table's source."""
