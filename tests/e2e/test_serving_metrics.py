"""The serving pods are scraped for real: Prometheus (built from its Go module, upstream's annotation-
driven ``kubernetes-pods`` job) finds a CPU ModelDeployment's replica by the ``prometheus.io/*``
annotations the operator puts on it and scrapes what that engine serves (for ``transformers serve``,
which has no metrics of its own, the launcher's: the engine is ready, how long it took to start)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from hack.controlplane.cluster import wait_for
from hack.thirdparty.prometheus import Prometheus
from tests.cluster.conftest import OperatorProcess
from tests.e2e.serving import cpu_model_deployment, create, model_claim  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NAME = "tiny-scraped"


def test_prometheus_scrapes_a_serving_replica_by_the_operators_annotations(
    prometheus: Prometheus,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    model_claim: str,  # noqa: F811  (the fixture imported above)
    record_property: Any,
) -> None:
    core = client.CoreV1Api(api_client)
    create(api_client, namespace, cpu_model_deployment(NAME, replicas=1))
    ready = f'modelfleet_serve_engine_ready{{namespace="{namespace}",pod=~"{NAME}-stable-.*"}}'
    wait_for(
        lambda: [r for r in prometheus.query(core, ready) if r["value"][1] == "1"],
        600,
        f"Prometheus to scrape {ready} = 1 from the replica",
    )
    (startup,) = prometheus.query(core, f'modelfleet_serve_engine_startup_seconds{{namespace="{namespace}"}}')
    assert float(startup["value"][1]) > 0, startup
    assert startup["metric"]["pod"].startswith(f"{NAME}-stable-")
    record_property("engine_startup_seconds_scraped", round(float(startup["value"][1]), 1))
