"""kopf wiring of the BenchmarkSweep controller (``common.handlers``): one daemon per sweep, woken by
events on it, on its benchmark Jobs and on the ModelDeployments it expanded (ready timeouts need the
resync clock, and referenced deployments are not watched)."""

from __future__ import annotations

import kopf
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from modelfleet_operator.benchmark.reconcile import KIND, BenchmarkSweepReconciler
from modelfleet_operator.common.handlers import Watch, post_event, register_controller
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube

PLURAL = "benchmarksweeps"


def register(registry: kopf.OperatorRegistry, config: OperatorConfig, kube: Kube) -> None:
    """Register the BenchmarkSweep handlers on ``registry``."""
    reconciler = BenchmarkSweepReconciler(kube, config, post_event)
    register_controller(
        registry,
        config,
        kind=KIND,
        plural=PLURAL,
        reconciler=reconciler,
        watches=[
            Watch("batch", "v1", "jobs", c.LABEL_BENCHMARK_SWEEP),
            Watch(GROUP, VERSION, "modeldeployments", c.LABEL_BENCHMARK_SWEEP),
        ],
    )
