"""``python -m modelfleet_operator`` / ``modelfleet-operator``: run the operator.

Examples::

    modelfleet-operator --standalone -A                 # one replica, every namespace
    modelfleet-operator -n team-a -n team-b             # HA replicas peer through "modelfleet"
    MODELFLEET_RESYNC_SECONDS=1 modelfleet-operator     # settings also come from the environment
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import kopf
from modelfleet_api import constants as c

from modelfleet_operator import gc_tuning, kopf_fixes, metrics
from modelfleet_operator.benchmark import handlers as benchmark_handlers
from modelfleet_operator.common.essence import OwnKindsDiffBase
from modelfleet_operator.common.handlers import Operator, register_indexes
from modelfleet_operator.common.kinds import (
    BENCHMARK_SWEEP,
    MODEL_DEPLOYMENT,
    OBSERVED_KINDS,
    SERVICE_ACCOUNT,
)
from modelfleet_operator.config import OperatorConfig, load_config
from modelfleet_operator.kube import Kube
from modelfleet_operator.logging_setup import configure_logging
from modelfleet_operator.serving import handlers as serving_handlers
from modelfleet_operator.training import handlers as training_handlers

if TYPE_CHECKING:
    from modelfleet_operator.capacity.manager import CapacityManager

logger = logging.getLogger("modelfleet_operator")

IDLE_CHECK_SECONDS = 60.0
WORKER_IDLE_SECONDS = 1.0


def build_registry(
    config: OperatorConfig, kube: Kube, capacity: CapacityManager | None = None
) -> kopf.OperatorRegistry:
    kopf_fixes.install()
    registry = kopf.OperatorRegistry()
    operator = Operator(config, registry)
    register_indexes(operator)
    training_handlers.register(operator, kube, capacity)
    serving_handlers.register(operator, kube, capacity)
    benchmark_handlers.register(operator, kube)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In a pod its service account, elsewhere ``$KUBECONFIG`` (a custom registry has no default)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        apply_settings(settings, config)
        settings.persistence.diffbase_storage = OwnKindsDiffBase()  # no handler reads an essence
        await kube.start()

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await kube.close()

    return registry


def apply_settings(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    settings.posting.reporting_component = c.MANAGED_BY
    settings.persistence.finalizer = c.FINALIZER
    settings.execution.default_backoff = config.backoff_seconds
    settings.networking.error_backoffs = [config.backoff_seconds]
    settings.watching.server_timeout = config.watch_timeout_seconds  # the API server wants whole seconds
    settings.watching.client_timeout = config.watch_timeout_seconds + 10
    # Peering is set here only: kopf.operator(peering_name=...) would make it mandatory. Not mandatory,
    # replicas peer when the chart installed kopf's peering CRDs and run alone otherwise.
    settings.peering.name = config.peering_name
    settings.peering.priority = config.priority
    settings.peering.standalone = config.standalone
    # Only the operator's own children and pods are of interest: filter them on the server, not in this
    # process. ServiceAccounts are all watched (a runtime one is the namespace's), ModelDeployments and
    # BenchmarkSweeps too (users make them; the operator also makes some, as children).
    for kind in OBSERVED_KINDS:
        if kind not in (SERVICE_ACCOUNT, MODEL_DEPLOYMENT, BENCHMARK_SWEEP):
            settings.watching.label_selectors[kind.group, kind.plural] = (
                f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
            )
    # kopf keeps a worker task (and the latest event's body) per object for this long after its last
    # event: a second instead of five keeps the operator's memory down while thousands of children and
    # pods change at once.
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    # Every handler is a coroutine; the executor runs only the capacity manager's Azure calls.
    settings.execution.max_workers = max(4, min(config.workers, 16))


def main(argv: Sequence[str] | None = None) -> None:
    config = load_config(sys.argv[1:] if argv is None else argv)
    configure_logging(config.log_format)
    if config.metrics_port:
        metrics.serve(config.metrics_port)
    kube = Kube(max_connections=config.api_connections, qps=config.api_qps, burst=config.api_burst)
    capacity = None
    if config.capacity is not None:
        # Imported only here: the Azure SDK costs tens of MB of memory an operator without it never uses.
        from modelfleet_operator.capacity.arm import AgentPools
        from modelfleet_operator.capacity.manager import CapacityManager

        capacity = CapacityManager(config.capacity, AgentPools(config.capacity))
        capacity.start(min(IDLE_CHECK_SECONDS, config.capacity.idle_seconds))
        logger.info(
            "capacity manager on for AKS cluster %s/%s, ceilings %s",
            config.capacity.resource_group,
            config.capacity.cluster_name,
            {size.value: count for size, count in config.capacity.max_nodes.items()} or "none",
        )
    registry = build_registry(config, kube, capacity)
    gc_tuning.tune()
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
    logger.info(
        "starting: %s, training image %s, %s",
        "cluster-wide" if not config.namespaces else f"namespaces {', '.join(config.namespaces)}",
        config.training_image,
        "standalone" if config.standalone else f"peering {config.peering_name!r} priority {config.priority}",
    )
    try:
        asyncio.run(
            kopf.operator(
                registry=registry,
                clusterwide=not config.namespaces,
                namespaces=config.namespaces,
                liveness_endpoint=liveness,
            )
        )
    finally:
        if capacity is not None:
            capacity.stop()


if __name__ == "__main__":
    main()
