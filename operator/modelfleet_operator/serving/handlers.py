"""kopf wiring of the ModelDeployment controller (``common.handlers``): one daemon per ModelDeployment,
woken by events on it, on its children and server pods, and on the KEDA and Gateway API CRDs; its own
events also wake the BenchmarkSweeps that own or name it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelfleet_api.modeldeployment import ModelDeployment, ModelDeploymentStatus

from modelfleet_operator.common.handlers import Operator, post_event, register_controller, sweeps_naming
from modelfleet_operator.common.reconcile import Engine
from modelfleet_operator.kube import Kube
from modelfleet_operator.serving.reconcile import ModelDeploymentController

if TYPE_CHECKING:  # the Azure SDK is imported only when the capacity manager is on
    from modelfleet_operator.capacity.manager import CapacityManager


def register(operator: Operator, kube: Kube, capacity: CapacityManager | None = None) -> None:
    """Register the ModelDeployment daemon and handlers."""
    engine: Engine[ModelDeployment, ModelDeploymentStatus] = Engine(
        ModelDeploymentController(operator.config), kube, post_event, capacity
    )
    register_controller(operator, engine, also_wake=sweeps_naming)
