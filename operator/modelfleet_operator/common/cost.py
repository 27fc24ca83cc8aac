"""Cost accounting shared by the controllers (pure): the VM shares a resource's pods hold, the price of
its VM size and priority, and ``status.cost`` brought up to date (``modelfleet_api.cost``).

Like GPU-hours, the total is brought up to date when the shares held change, or (at most once a minute)
when the status is written anyway: an idle resource writes nothing, its cost grows by ``vms`` times
the time since ``updatedAt``.
"""

from __future__ import annotations

from datetime import datetime

from modelfleet_api import instance_types as it
from modelfleet_api.common import NodePlacement
from modelfleet_api.cost import CostStatus, PriceTable

MIN_INTERVAL_SECONDS = 60.0


def vm_share(placement: NodePlacement, pods: int, gpus_per_pod: int) -> float:
    """VMs the pods hold: GPUs over the VM's GPUs on a GPU size, one per pod on a CPU size."""
    size = it.info(placement.instance_type)
    return pods * gpus_per_pod / size.gpus if size.is_gpu else float(pods)


def price(table: PriceTable | None, placement: NodePlacement) -> tuple[float | None, str]:
    """The price of one VM-hour of the placement, and the basis (or why there is none)."""
    priority = "spot" if placement.spot else "on-demand"
    size = placement.instance_type.value
    if table is None:
        return None, "the operator has no price table (chart value pricing)"
    entry = table.sizes.get(placement.instance_type)
    found = None if entry is None else (entry.spot if placement.spot else entry.on_demand)
    if found is None:
        return None, f"the operator's price table has no {priority} price for {size} (chart value pricing)"
    source = f"; {table.source}" if table.source else ""
    return found, f"{size} {priority} at {found:g} {table.currency} per VM-hour{source}"


def account(
    previous: CostStatus | None,
    *,
    vms_now: float,
    now: datetime,
    table: PriceTable | None,
    placement: NodePlacement,
    writing: bool,
) -> CostStatus | None:
    """``status.cost`` brought up to date (``writing``: the status is written this pass anyway); None
    until the resource first holds a VM."""
    if previous is None and not vms_now:
        return None
    cost = previous.model_copy() if previous is not None else CostStatus()
    per_hour, basis = price(table, placement)
    if cost.updated_at is not None:
        elapsed = max(0.0, (now - cost.updated_at).total_seconds())
        due = writing and elapsed >= MIN_INTERVAL_SECONDS
        if vms_now == cost.vms and not due:
            return cost
        cost.vm_hours = round(cost.vm_hours + cost.vms * elapsed / 3600.0, 6)
    cost.vms = vms_now
    cost.updated_at = now if vms_now else None
    cost.basis = basis
    cost.currency = table.currency if table is not None and per_hour is not None else None
    cost.amount = round(cost.vm_hours * per_hour, 4) if per_hour is not None else None
    return cost


def total_cost(costs: list[CostStatus]) -> CostStatus | None:
    """Several resources' costs added up (a sweep's deployments); unpriced when any part is."""
    if not costs:
        return None
    currencies = {cost.currency for cost in costs}
    priced = all(cost.amount is not None for cost in costs) and len(currencies) == 1
    stamps = [cost.updated_at for cost in costs if cost.updated_at is not None]
    return CostStatus(
        amount=round(sum(cost.amount or 0.0 for cost in costs), 4) if priced else None,
        currency=costs[0].currency if priced else None,
        vm_hours=round(sum(cost.vm_hours for cost in costs), 6),
        vms=sum(cost.vms for cost in costs),
        updated_at=max(stamps) if stamps else None,
        basis="; ".join(dict.fromkeys(cost.basis for cost in costs if cost.basis)),
    )
