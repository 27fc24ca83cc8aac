"""kopf wiring of the TrainingJob controller (``common.handlers``): one daemon per TrainingJob, woken by
events on it and on its children and worker pods; its own events also wake the ModelDeployments that
serve its output."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelfleet_api.trainingjob import TrainingJob, TrainingJobStatus

from modelfleet_operator.common.handlers import (
    Operator,
    deployments_serving,
    post_event,
    register_controller,
)
from modelfleet_operator.common.reconcile import Engine
from modelfleet_operator.kube import Kube
from modelfleet_operator.training.reconcile import TrainingJobController

if TYPE_CHECKING:  # the Azure SDK is imported only when the capacity manager is on
    from modelfleet_operator.capacity.manager import CapacityManager


def register(operator: Operator, kube: Kube, capacity: CapacityManager | None = None) -> None:
    """Register the TrainingJob daemon and handlers."""
    engine: Engine[TrainingJob, TrainingJobStatus] = Engine(
        TrainingJobController(operator.config), kube, post_event, capacity
    )
    register_controller(operator, engine, also_wake=deployments_serving)
