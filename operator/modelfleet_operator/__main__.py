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
from typing import Any

import kopf
from modelfleet_api import constants as c

from modelfleet_operator.config import OperatorConfig, load_config
from modelfleet_operator.kube import Kube
from modelfleet_operator.serving import handlers as serving_handlers
from modelfleet_operator.training import handlers as training_handlers

logger = logging.getLogger("modelfleet_operator")


def build_registry(config: OperatorConfig, kube: Kube) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    training_handlers.register(registry, config, kube)
    serving_handlers.register(registry, config, kube)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In a pod its service account, elsewhere ``$KUBECONFIG`` (a custom registry has no default)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        apply_settings(settings, config)

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
    # Only the operator's own Jobs are of interest: filter them on the server, not in this process.
    settings.watching.label_selectors["batch", "jobs"] = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
    settings.watching.label_selectors["apps", "deployments"] = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"


def main(argv: Sequence[str] | None = None) -> None:
    config = load_config(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kube = Kube()
    registry = build_registry(config, kube)
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
    logger.info(
        "starting: %s, training image %s, %s",
        "cluster-wide" if not config.namespaces else f"namespaces {', '.join(config.namespaces)}",
        config.training_image,
        "standalone" if config.standalone else f"peering {config.peering_name!r} priority {config.priority}",
    )
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not config.namespaces,
            namespaces=config.namespaces,
            liveness_endpoint=liveness,
        )
    )


if __name__ == "__main__":
    main()
