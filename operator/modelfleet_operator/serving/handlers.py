"""kopf wiring of the ModelDeployment controller.

As for TrainingJobs: one daemon per ModelDeployment runs the reconcile in a worker thread, then sleeps
until woken or until the resync interval passes (pod start-up and crash loops show in pods, which are
read each pass rather than watched). Events on the ModelDeployment and on its Deployments (their
ready counts, the autoscaler's replica changes) wake its daemon early.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import kopf
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.serving.reconcile import ModelDeploymentReconciler

logger = logging.getLogger(__name__)

PLURAL = "modeldeployments"


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


def register(registry: kopf.OperatorRegistry, config: OperatorConfig, kube: Kube) -> None:
    """Register the ModelDeployment handlers on ``registry``."""
    reconciler = ModelDeploymentReconciler(kube, config, _post_event)
    wakeups: dict[tuple[str, str], asyncio.Event] = {}

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)  # type: ignore[arg-type]
    async def model_deployment_daemon(
        name: str, namespace: str, uid: str, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        wake = wakeups.setdefault((namespace, name), asyncio.Event())
        try:
            while not stopped:
                try:
                    await asyncio.to_thread(reconciler.reconcile, namespace, name)
                    pause = config.resync_seconds
                except Exception:  # a failed pass is retried; the daemon must outlive API hiccups
                    logger.exception("reconcile of ModelDeployment %s/%s failed", namespace, name)
                    pause = config.backoff_seconds
                await _sleep(wake, stopped, pause)
        finally:
            wakeups.pop((namespace, name), None)
            reconciler.forget(uid)

    def wake(namespace: str, name: str) -> None:
        found = wakeups.get((namespace, name))
        if found is not None:
            found.set()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)  # type: ignore[arg-type]
    def model_deployment_changed(name: str, namespace: str, **_: Any) -> None:
        wake(namespace, name)

    @kopf.on.event(  # type: ignore[arg-type]
        "apps", "v1", "deployments", labels={c.LABEL_MODEL_DEPLOYMENT: kopf.PRESENT}, registry=registry
    )
    def serving_deployment_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
        wake(namespace, labels[c.LABEL_MODEL_DEPLOYMENT])
