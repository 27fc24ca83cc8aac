"""kopf wiring of the TrainingJob controller (``common.handlers``): one daemon per TrainingJob, woken
by events on it and on its worker Jobs."""

from __future__ import annotations

import kopf
from modelfleet_api import constants as c

from modelfleet_operator.capacity.manager import CapacityManager
from modelfleet_operator.common.handlers import Watch, post_event, register_controller
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube
from modelfleet_operator.training.reconcile import KIND, TrainingJobReconciler

PLURAL = "trainingjobs"


def register(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    kube: Kube,
    capacity: CapacityManager | None = None,
) -> None:
    """Register the TrainingJob handlers on ``registry``."""
    reconciler = TrainingJobReconciler(kube, config, post_event, capacity=capacity)
    register_controller(
        registry,
        config,
        kind=KIND,
        plural=PLURAL,
        reconciler=reconciler,
        watches=[Watch("batch", "v1", "jobs", c.LABEL_TRAINING_JOB)],
    )
