"""kopf wiring of the BenchmarkSweep controller.

As for TrainingJobs (and with their ``Wakeups`` and sleep): one daemon per sweep runs the reconcile
in a worker thread (``metrics.reconcile_in_thread``), then sleeps until woken or until the resync
interval passes (ready timeouts need a clock, and referenced deployments are not watched). Events on
the sweep, on its benchmark Jobs and on the ModelDeployments it expanded wake its daemon early.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from modelfleet_operator import metrics
from modelfleet_operator.benchmark.reconcile import KIND, BenchmarkSweepReconciler
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube, Manifest
from modelfleet_operator.training.handlers import Wakeups, _sleep

logger = logging.getLogger(__name__)

PLURAL = "benchmarksweeps"


def _post_event(body: Manifest, type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig, kube: Kube) -> None:
    """Register the BenchmarkSweep handlers on ``registry``."""
    reconciler = BenchmarkSweepReconciler(kube, config, _post_event)
    wakeups = Wakeups()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)  # type: ignore[arg-type]
    async def benchmark_sweep_daemon(
        name: str, namespace: str, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        wake = wakeups.event(namespace, name)
        try:
            while not stopped:
                try:
                    await metrics.reconcile_in_thread(KIND, reconciler.reconcile, namespace, name)
                    pause = config.resync_seconds
                except Exception:  # a failed pass is retried; the daemon must outlive API hiccups
                    logger.exception("reconcile of BenchmarkSweep %s/%s failed", namespace, name)
                    pause = config.backoff_seconds
                await _sleep(wake, stopped, pause)
        finally:
            wakeups.drop(namespace, name)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)  # type: ignore[arg-type]
    def benchmark_sweep_changed(name: str, namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, name)

    @kopf.on.event(  # type: ignore[arg-type]
        "batch", "v1", "jobs", labels={c.LABEL_BENCHMARK_SWEEP: kopf.PRESENT}, registry=registry
    )
    def benchmark_job_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, labels[c.LABEL_BENCHMARK_SWEEP])

    @kopf.on.event(  # type: ignore[arg-type]
        GROUP, VERSION, "modeldeployments", labels={c.LABEL_BENCHMARK_SWEEP: kopf.PRESENT}, registry=registry
    )
    def expanded_deployment_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, labels[c.LABEL_BENCHMARK_SWEEP])
