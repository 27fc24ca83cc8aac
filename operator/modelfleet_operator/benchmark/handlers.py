"""kopf wiring of the BenchmarkSweep controller (``common.handlers``): one daemon per sweep, woken by
events on it, on its Jobs, pods and ConfigMaps, and on the ModelDeployments it owns or names (an index
of sweeps by the deployments their targets name finds those)."""

from __future__ import annotations

from typing import Any

import kopf
from modelfleet_api.benchmarksweep import BenchmarkSweepStatus

from modelfleet_operator.benchmark.reconcile import BenchmarkSweepController, Sweep
from modelfleet_operator.common import indexes as ix
from modelfleet_operator.common.handlers import Operator, post_event, register_controller
from modelfleet_operator.common.kinds import BENCHMARK_SWEEP
from modelfleet_operator.common.reconcile import Engine
from modelfleet_operator.kube import Kube


def register(operator: Operator, kube: Kube) -> None:
    """Register the BenchmarkSweep daemon, handlers and the index of the deployments sweeps name."""
    engine: Engine[Sweep, BenchmarkSweepStatus] = Engine(
        BenchmarkSweepController(operator.config), kube, post_event
    )
    register_controller(operator, engine)

    async def by_target(name: str, namespace: str | None, spec: kopf.Spec, **_: Any) -> dict[Any, str] | None:
        named = [t.get("deploymentRef") for t in spec.get("targets") or [] if t.get("deploymentRef")]
        return {(namespace or "", deployment): name for deployment in named} or None

    kopf.index(
        BENCHMARK_SWEEP.group,
        BENCHMARK_SWEEP.version,
        BENCHMARK_SWEEP.plural,
        id=ix.SWEEPS_BY_TARGET,
        registry=operator.registry,
    )(by_target)
    operator.index_ids.add(ix.SWEEPS_BY_TARGET)
