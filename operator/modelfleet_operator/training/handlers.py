"""kopf wiring of the TrainingJob controller.

One daemon per TrainingJob runs the reconcile in a worker thread, then sleeps until woken or until
the resync interval passes (timeouts, stalls and TTLs need a clock, not only events). Events on the
TrainingJob itself and on its worker Jobs wake its daemon early. One daemon per object means passes
over the same TrainingJob never overlap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import kopf
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from modelfleet_operator import metrics
from modelfleet_operator.capacity.manager import CapacityManager
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.training.reconcile import KIND, TrainingJobReconciler

logger = logging.getLogger(__name__)

PLURAL = "trainingjobs"


class Wakeups:
    """An asyncio event per TrainingJob (namespace, name), set by watch events, awaited by its daemon."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}

    def event(self, namespace: str, name: str) -> asyncio.Event:
        return self._events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        found = self._events.get((namespace, name))
        if found is not None:
            found.set()

    def drop(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)


def _post_event(body: Manifest, type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    async def until_stopped() -> None:
        await stopped.wait()

    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(until_stopped())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()


def register(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    kube: Kube,
    capacity: CapacityManager | None = None,
) -> None:
    """Register the TrainingJob handlers on ``registry``."""
    reconciler = TrainingJobReconciler(kube, config, _post_event, capacity=capacity)
    wakeups = Wakeups()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)  # type: ignore[arg-type]
    async def training_job_daemon(
        name: str, namespace: str, uid: str, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        wake = wakeups.event(namespace, name)
        try:
            while not stopped:
                try:
                    await metrics.reconcile_in_thread(KIND, reconciler.reconcile, namespace, name)
                    pause = config.resync_seconds
                except Exception:  # a failed pass is retried; the daemon must outlive API hiccups
                    logger.exception("reconcile of TrainingJob %s/%s failed", namespace, name)
                    pause = config.backoff_seconds
                await _sleep(wake, stopped, pause)
        finally:
            wakeups.drop(namespace, name)
            reconciler.forget(uid)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)  # type: ignore[arg-type]
    def training_job_changed(name: str, namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, name)

    @kopf.on.event(  # type: ignore[arg-type]
        "batch", "v1", "jobs", labels={c.LABEL_TRAINING_JOB: kopf.PRESENT}, registry=registry
    )
    def worker_job_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, labels[c.LABEL_TRAINING_JOB])
