"""The operator's Prometheus metrics and the helpers every controller reports through.

Metric names are the ones the chart's dashboard and PrometheusRule query:

- ``modelfleet_reconcile_total{kind,result}`` and ``modelfleet_reconcile_duration_seconds{kind}``:
  one sample per reconcile pass, recorded by :func:`measured_pass`;
- ``modelfleet_reconcile_queue_depth{kind,state}``: passes ``waiting`` for one of the operator's
  ``workers`` slots and ``running`` in one;
- ``modelfleet_resources{kind,phase}``: resources by ``status.phase``, from :class:`PhaseIndex`, which
  the entry point feeds from watch events of every kind;
- ``modelfleet_api_requests_total{verb}`` and ``modelfleet_api_errors_total{verb,code}``: Kubernetes API
  calls the operator made (kopf's own watches and patches aside) and those that failed, counted by
  ``kube.Kube``;
- ``modelfleet_capacity_actions_total{instance_type,action}``,
  ``modelfleet_capacity_demand_nodes{instance_type}`` and ``modelfleet_azure_errors_total{code}``: what
  the GPU capacity manager did to AKS node pools, the nodes it is asked for, and which Azure errors it
  met.

This module imports neither kopf nor the Kubernetes client, so any layer may report through it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from modelfleet_operator.common.slots import PassSlots, Priority
from modelfleet_operator.log_context import resource_context

T = TypeVar("T")

RESULT_SUCCESS = "success"
RESULT_ERROR = "error"
CONNECTION_ERROR_CODE = "connection"
"""``code`` label of API calls that got no HTTP answer (refused, reset, timed out)."""

RECONCILES = Counter(
    "modelfleet_reconcile_total", "Reconcile passes by resource kind and result.", ["kind", "result"]
)
RECONCILE_SECONDS = Histogram(
    "modelfleet_reconcile_duration_seconds",
    "Wall time of one reconcile pass.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
QUEUE_DEPTH = Gauge(
    "modelfleet_reconcile_queue_depth",
    "Reconcile passes waiting for a worker thread (state=waiting) or running in one (state=running).",
    ["kind", "state"],
)
API_REQUESTS = Counter(
    "modelfleet_api_requests_total", "Kubernetes API requests the operator made, by verb.", ["verb"]
)
API_ERRORS = Counter(
    "modelfleet_api_errors_total",
    "Kubernetes API calls of the operator that failed, by verb and HTTP status (or 'connection').",
    ["verb", "code"],
)
CAPACITY_ACTIONS = Counter(
    "modelfleet_capacity_actions_total",
    "Node pool changes the capacity manager made (create, scale_up, scale_down).",
    ["instance_type", "action"],
)
CAPACITY_DEMAND = Gauge(
    "modelfleet_capacity_demand_nodes",
    "Nodes the capacity manager is asked for now, by VM size (over every resource that waits or runs).",
    ["instance_type"],
)
AZURE_ERRORS = Counter(
    "modelfleet_azure_errors_total", "Azure Resource Manager errors met by the capacity manager.", ["code"]
)


def count_api_request(verb: str) -> None:
    API_REQUESTS.labels(verb).inc()


def count_api_error(verb: str, code: int | str | None) -> None:
    API_ERRORS.labels(verb, CONNECTION_ERROR_CODE if code is None else str(code)).inc()


@contextmanager
def observe_reconcile(kind: str) -> Iterator[None]:
    """Counts one running reconcile pass of ``kind``, its duration and whether it raised."""
    running = QUEUE_DEPTH.labels(kind, "running")
    running.inc()
    started = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILES.labels(kind, RESULT_ERROR).inc()
        raise
    else:
        RECONCILES.labels(kind, RESULT_SUCCESS).inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
        running.dec()


async def measured_pass(
    kind: str,
    workers: PassSlots,
    priority: Priority,
    namespace: str,
    name: str,
    run: Callable[[], Awaitable[T]],
) -> T:
    """``await run()`` once one of the operator's ``workers`` slots is given to it (by ``priority``,
    ``common.slots``), measured and with the object in every log line it writes. The one call a
    controller's daemon makes per pass::

        await metrics.measured_pass("ModelDeployment", workers, Priority.ROUTINE, namespace, name, one_pass)

    The wait for a slot is the ``waiting`` queue, the pass itself the ``running`` one.
    """
    waiting = QUEUE_DEPTH.labels(kind, "waiting")
    waiting.inc()
    try:
        await workers.acquire(priority)
    finally:
        waiting.dec()
    try:
        with resource_context(kind, namespace, name), observe_reconcile(kind):
            return await run()
    finally:
        workers.release()


class PhaseIndex(Collector):
    """``modelfleet_resources{kind,phase}``: the phase of every resource seen in watch events.

    Fed by :meth:`observe` from the watch handler of each kind's objects (``common.handlers``); a
    resource without a phase yet counts as ``Pending``.
    """

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def observe(self, kind: str, uid: str, phase: str | None, *, deleted: bool) -> None:
        with self._lock:
            if deleted:
                self._phases.pop((kind, uid), None)
            else:
                self._phases[(kind, uid)] = phase or "Pending"

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            found: dict[tuple[str, str], int] = {}
            for (kind, _), phase in self._phases.items():
                found[(kind, phase)] = found.get((kind, phase), 0) + 1
            return found

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "modelfleet_resources", "modelfleet resources by kind and status.phase.", labels=["kind", "phase"]
        )
        for (kind, phase), count in sorted(self.counts().items()):
            family.add_metric([kind, phase], count)
        yield family


PHASES = PhaseIndex()
REGISTRY.register(PHASES)


def serve(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Expose ``/metrics`` on ``port`` (all interfaces) from a daemon thread."""
    start_http_server(port, registry=registry)
