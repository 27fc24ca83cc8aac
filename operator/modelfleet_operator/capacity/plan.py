"""What to do to an AKS cluster's node pools so a request fits (pure: pools in, decision out).

A request is (VM size, spot or not, optional pool name, nodes). A pool matches when its VM size and
priority match (and its name, when the request names one). The decision is one of: the matching
pools' autoscaler maxima already fit; raise one pool's maximum (within the ceiling); create a pool
autoscaling from 0; or blocked, with the reason.

Pools the manager changes carry tags: ``modelfleet-managed`` on pools it created and
``modelfleet-baseline-max-count`` with the maximum to return to once the pool is idle, so an idle
pool shrinks back to what its owner (Terraform or this manager) set, also after an operator restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from modelfleet_api import constants as c
from modelfleet_api.instance_types import InstanceType, info

TAG_MANAGED: Final = "modelfleet-managed"
TAG_BASELINE_MAX: Final = "modelfleet-baseline-max-count"
CREATED_BASELINE_MAX: Final = 1
"""Maximum an idle pool the manager created goes back to (AKS wants an autoscaler maximum of 1 or more;
the minimum of 0 keeps it free while idle)."""
PRIORITY_SPOT: Final = "Spot"
PRIORITY_REGULAR: Final = "Regular"


@dataclass(frozen=True)
class CapacityCondition:
    type: str
    status: bool
    reason: str
    message: str
    only_if_present: bool = False
    """Set only to clear a condition the resource already has (QuotaExceeded=False after a refusal)."""


@dataclass(frozen=True, kw_only=True)
class PoolState:
    """What the manager reads of an AKS agent pool."""

    name: str
    vm_size: str
    priority: str = PRIORITY_REGULAR
    autoscaling: bool = True
    count: int = 0
    min_count: int | None = 0
    max_count: int | None = None
    provisioning_state: str = "Succeeded"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        """Most nodes the pool can have without a change: the autoscaler maximum, else its count."""
        return (self.max_count or 0) if self.autoscaling else self.count


@dataclass(frozen=True, kw_only=True)
class Want:
    """The pool a request needs."""

    instance_type: InstanceType
    spot: bool = False
    pool_name: str | None = None

    @property
    def priority(self) -> str:
        return PRIORITY_SPOT if self.spot else PRIORITY_REGULAR

    @property
    def new_pool_name(self) -> str:
        """Name of a pool created for it: the one asked for, else DESIGN.md's (``spot`` appended for a
        spot pool of a size whose design pool is regular, within AKS's 12 characters)."""
        if self.pool_name:
            return self.pool_name
        base = info(self.instance_type).pool
        design_spot = self.instance_type is InstanceType.NC80ADIS_H100_V5
        return base if self.spot == design_spot else f"{base}{'spot' if self.spot else 'reg'}"[:12]

    def matches(self, pool: PoolState) -> bool:
        if self.pool_name is not None and pool.name != self.pool_name:
            return False
        return pool.vm_size.lower() == self.instance_type.value.lower() and pool.priority == self.priority

    def describe(self) -> str:
        return f"{'spot ' if self.spot else ''}{self.instance_type.value}"


@dataclass(frozen=True)
class Fits:
    pool: str
    limit: int


@dataclass(frozen=True)
class CreatePool:
    name: str
    max_count: int


@dataclass(frozen=True)
class RaiseMax:
    pool: str
    old_max: int
    max_count: int


@dataclass(frozen=True)
class Blocked:
    reason: str
    message: str


Decision = Fits | CreatePool | RaiseMax | Blocked


def decide(pools: list[PoolState], want: Want, needed: int, ceiling: int | None) -> Decision:
    """``needed``: nodes every resource asking for this pool needs together."""
    if ceiling is None:
        return Blocked(
            c.REASON_NOT_MANAGED,
            f"The capacity manager has no ceiling for {want.instance_type.value}, so it does not change its "
            "pools; the cluster admin sizes them (MODELFLEET_CAPACITY_MAX_NODES).",
        )
    matching = [pool for pool in pools if want.matches(pool)]
    if not matching:
        taken = next((pool for pool in pools if pool.name == want.new_pool_name), None)
        if taken is not None:
            return Blocked(
                c.REASON_POOL_CONFLICT,
                f"Pool {taken.name!r} exists with {taken.priority} {taken.vm_size}, not {want.describe()}; "
                "set resources.nodePool to a free name for a new pool.",
            )
        if needed > ceiling:
            return _over_ceiling(want, needed, ceiling)
        return CreatePool(want.new_pool_name, needed)
    total = sum(pool.limit for pool in matching)
    if total >= needed:
        biggest = max(matching, key=lambda pool: pool.limit)
        return Fits(biggest.name, total)
    growable = [pool for pool in matching if pool.autoscaling]
    if not growable:
        return Blocked(
            c.REASON_NOT_MANAGED,
            f"Pools {', '.join(p.name for p in matching)} do not autoscale; the manager only moves "
            "autoscaler maxima. Enable autoscaling on the pool or scale it by hand.",
        )
    if needed > ceiling:
        return _over_ceiling(want, needed, ceiling)
    pool = max(growable, key=lambda candidate: candidate.limit)
    return RaiseMax(pool.name, pool.limit, pool.limit + (needed - total))


def _over_ceiling(want: Want, needed: int, ceiling: int) -> Blocked:
    return Blocked(
        c.REASON_CEILING_REACHED,
        f"{needed} {want.describe()} nodes are asked for together, over the ceiling of {ceiling} "
        f"(MODELFLEET_CAPACITY_MAX_NODES); lower nodes or ask the cluster admin to raise it.",
    )


def baseline_max(pool: PoolState) -> int | None:
    """The maximum an idle pool returns to, when the manager ever raised it (or created it)."""
    value = pool.tags.get(TAG_BASELINE_MAX)
    return int(value) if value is not None and value.isdigit() else None


def shrink_target(pool: PoolState) -> int | None:
    """New maximum of an idle pool, or None to leave it. Never below the nodes it has now: AKS
    refuses a maximum under the current count, and the nodes may be in use by other workloads."""
    baseline = baseline_max(pool)
    if baseline is None or not pool.autoscaling or pool.max_count is None:
        return None
    target = max(baseline, pool.count, pool.min_count or 0)
    return target if target < pool.max_count else None
