"""The capacity manager: one call per reconcile pass, ``ensure``, answers with conditions to set.

Any controller uses it the same way: ``ensure(key, placement, nodes, scheduled=...)`` while the
resource is active (``key`` is its uid; ``nodes`` how many nodes of ``placement`` it needs) and
``release(key)`` when it finished, was suspended or deleted. Requests for the same pool add up, so two
jobs of 2 nodes raise a pool to 4. Azure is asked at most once per ``pool_cache_seconds`` for the
pools; a write starts a long-running operation whose poller is checked on later passes; a refused or
throttled request is not repeated before its backoff ends, and until then every pass gets the same
conditions. A background thread shrinks the maximum of pools nobody asked for during the idle period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError
from azure.core.polling import LROPoller
from modelfleet_api import constants as c
from modelfleet_api.common import NodePlacement

from modelfleet_operator.capacity.arm import AgentPools, AzureProblem, classify
from modelfleet_operator.capacity.plan import (
    Blocked,
    CapacityCondition,
    CreatePool,
    Fits,
    PoolState,
    RaiseMax,
    Want,
    decide,
    shrink_target,
)
from modelfleet_operator.capacity.settings import CapacitySettings
from modelfleet_operator.metrics import AZURE_ERRORS, CAPACITY_ACTIONS, CAPACITY_DEMAND

logger = logging.getLogger(__name__)

SETTLED_STATES = frozenset({"Succeeded", "Failed", "Canceled"})


def _ready(reason: str, message: str, status: bool = False) -> CapacityCondition:
    return CapacityCondition(c.COND_CAPACITY_READY, status, reason, message)


_QUOTA_CLEARED = CapacityCondition(
    c.COND_QUOTA_EXCEEDED, False, c.REASON_QUOTA_AVAILABLE, "Azure accepted the pool request.", True
)


@dataclass
class _Operation:
    poller: LROPoller[Any]
    conditions: list[CapacityCondition]


@dataclass
class _Backoff:
    until: float
    conditions: list[CapacityCondition]


class CapacityManager:
    def __init__(
        self, settings: CapacitySettings, pools: AgentPools, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._azure = pools
        self._clock = clock
        self._lock = threading.RLock()
        self._demand: dict[str, tuple[Want, int]] = {}
        self._published: set[str] = set()
        self._last_asked: dict[Want, float] = {}
        self._operations: dict[Want, _Operation] = {}
        self._backoffs: dict[Want, _Backoff] = {}
        self._pools: list[PoolState] = []
        self._pools_read_at: float | None = None
        self._started_at = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- per resource ---------------------------------------------------------------------------
    def ensure(
        self, key: str, placement: NodePlacement, nodes: int, *, scheduled: bool
    ) -> list[CapacityCondition]:
        want = Want(instance_type=placement.instance_type, spot=placement.spot, pool_name=placement.node_pool)
        with self._lock:
            self._demand[key] = (want, nodes)
            self._publish_demand()
            self._last_asked[want] = self._clock()
            if scheduled:
                message = f"All pods are on {want.describe()} nodes."
                return [_ready(c.REASON_CAPACITY_AVAILABLE, message, True), _QUOTA_CLEARED]
            needed = sum(n for asked, n in self._demand.values() if asked == want)
            return self._request(want, needed)

    def release(self, key: str) -> None:
        with self._lock:
            self._demand.pop(key, None)
            self._publish_demand()

    def _publish_demand(self) -> None:
        """``modelfleet_capacity_demand_nodes``: every VM size asked for, 0 once nobody asks."""
        totals: dict[str, int] = {}
        for want, nodes in self._demand.values():
            totals[want.instance_type.value] = totals.get(want.instance_type.value, 0) + nodes
        for size in set(self._published) | set(totals):
            CAPACITY_DEMAND.labels(size).set(totals.get(size, 0))
        self._published = set(totals) | self._published

    def _request(self, want: Want, needed: int) -> list[CapacityCondition]:
        now = self._clock()
        operation = self._operations.get(want)
        if operation is not None:
            if not operation.poller.done():
                return operation.conditions
            del self._operations[want]
            self._pools_read_at = None
            try:
                operation.poller.result()
            except AzureError as error:
                return self._failed(want, error)
        backoff = self._backoffs.get(want)
        if backoff is not None and backoff.until > now:
            return backoff.conditions
        self._backoffs.pop(want, None)
        try:
            ceiling = self._settings.max_nodes.get(want.instance_type)
            decision = decide(self._read_pools(now), want, needed, ceiling)
            return self._act(want, decision)
        except AzureError as error:
            return self._failed(want, error)

    def _act(self, want: Want, decision: Fits | CreatePool | RaiseMax | Blocked) -> list[CapacityCondition]:
        if isinstance(decision, Blocked):
            return [CapacityCondition(c.COND_CAPACITY_REQUESTED, False, decision.reason, decision.message)]
        if isinstance(decision, Fits):
            pool = next(p for p in self._pools if p.name == decision.pool)
            if pool.provisioning_state not in SETTLED_STATES:
                message = f"AKS is updating pool {pool.name!r} ({pool.provisioning_state})."
                return [_ready(c.REASON_POOL_PROVISIONING, message), _QUOTA_CLEARED]
            message = (
                f"{want.describe()} pools can grow to {decision.limit} nodes; the cluster autoscaler adds "
                "nodes for the pending pods."
            )
            return [_ready(c.REASON_WAITING_FOR_NODES, message), _QUOTA_CLEARED]
        if isinstance(decision, CreatePool):
            poller = self._azure.create(want, decision.name, decision.max_count)
            action, reason = "create", c.REASON_POOL_CREATING
            message = (
                f"Creating AKS pool {decision.name!r} of {want.describe()}, autoscaling 0 to "
                f"{decision.max_count} nodes."
            )
        else:
            poller = self._azure.set_max_count(decision.pool, decision.max_count, remember_baseline=True)
            action, reason = "scale_up", c.REASON_POOL_SCALING_UP
            message = (
                f"Raising the autoscaler maximum of AKS pool {decision.pool!r} from {decision.old_max} to "
                f"{decision.max_count} nodes."
            )
        CAPACITY_ACTIONS.labels(want.instance_type.value, action).inc()
        logger.info("%s", message)
        conditions = [
            CapacityCondition(c.COND_CAPACITY_REQUESTED, True, reason, message),
            _ready(c.REASON_POOL_PROVISIONING, f"Waiting for AKS: {message}"),
        ]
        self._operations[want] = _Operation(poller, conditions)
        return conditions

    def _failed(self, want: Want, error: AzureError) -> list[CapacityCondition]:
        problem: AzureProblem = classify(error)
        AZURE_ERRORS.labels(problem.code).inc()
        wait = self._settings.error_backoff_seconds if problem.retry_after is None else problem.retry_after
        text = f"Azure refused the {want.describe()} pool request: {problem.code}: {problem.message}"
        logger.warning("%s (asking again in %.0fs)", text, wait)
        conditions = [
            CapacityCondition(
                c.COND_CAPACITY_REQUESTED, False, problem.reason, f"{text}. Asking again in {wait:.0f}s."
            )
        ]
        if problem.quota:
            conditions.append(CapacityCondition(c.COND_QUOTA_EXCEEDED, True, problem.reason, text))
        self._backoffs[want] = _Backoff(self._clock() + wait, conditions)
        return conditions

    def _read_pools(self, now: float) -> list[PoolState]:
        read_at = self._pools_read_at
        if read_at is None or now - read_at >= self._settings.pool_cache_seconds:
            self._pools = self._azure.list()
            self._pools_read_at = now
        return self._pools

    # ---- idle pools -----------------------------------------------------------------------------
    def shrink_idle(self) -> list[str]:
        """Lower the maximum of every pool nobody asked for during the idle period back to its baseline
        (never below the nodes it has). Returns the pools changed."""
        changed = []
        with self._lock:
            now = self._clock()
            self._pools_read_at = None
            for pool in self._read_pools(now):
                target = shrink_target(pool)
                if target is None or self._in_use(pool, now):
                    continue
                self._azure.set_max_count(pool.name, target, remember_baseline=False)
                CAPACITY_ACTIONS.labels(pool.vm_size, "scale_down").inc()
                logger.info(
                    "AKS pool %r was idle for %.0fs: autoscaler maximum %s -> %d",
                    pool.name,
                    self._settings.idle_seconds,
                    pool.max_count,
                    target,
                )
                changed.append(pool.name)
            if changed:
                self._pools_read_at = None
        return changed

    def _in_use(self, pool: PoolState, now: float) -> bool:
        if any(want.matches(pool) for want in self._operations):
            return True
        if any(want.matches(pool) for want, _ in self._demand.values()):
            return True
        last = max(
            (at for want, at in self._last_asked.items() if want.matches(pool)), default=self._started_at
        )
        return now - last < self._settings.idle_seconds

    def start(self, interval: float) -> None:
        """Check for idle pools every ``interval`` seconds in a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.shrink_idle()
                except AzureError as error:
                    problem = classify(error)
                    AZURE_ERRORS.labels(problem.code).inc()
                    logger.warning("idle pool check failed: %s: %s", problem.code, problem.message)

        self._thread = threading.Thread(target=loop, name="capacity-idle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._azure.close()
