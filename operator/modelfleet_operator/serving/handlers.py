"""kopf wiring of the ModelDeployment controller (``common.handlers``): one daemon per ModelDeployment,
woken by events on it and on its Deployments (their ready counts, the autoscaler's replica changes).
Pod start-up and crash loops show in pods, which are read each pass rather than watched."""

from __future__ import annotations

import kopf
from modelfleet_api import constants as c

from modelfleet_operator.capacity.manager import CapacityManager
from modelfleet_operator.common.handlers import Watch, post_event, register_controller
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube
from modelfleet_operator.serving.reconcile import KIND, ModelDeploymentReconciler

PLURAL = "modeldeployments"


def register(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    kube: Kube,
    capacity: CapacityManager | None = None,
) -> None:
    """Register the ModelDeployment handlers on ``registry``."""
    reconciler = ModelDeploymentReconciler(kube, config, post_event, capacity=capacity)
    register_controller(
        registry,
        config,
        kind=KIND,
        plural=PLURAL,
        reconciler=reconciler,
        watches=[Watch("apps", "v1", "deployments", c.LABEL_MODEL_DEPLOYMENT)],
    )
