"""Prometheus, built from its Go module, running as a pod on the real node: it finds a pod through
the Kubernetes API by its ``prometheus.io/*`` annotations and scrapes it."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.thirdparty.prometheus import Prometheus
from tests.e2e.workloads import GAUGE, PORT, create, ready_replicas, site, web_deployment

pytestmark = pytest.mark.e2e


def test_prometheus_scrapes_a_pod_it_discovers_by_its_annotations(
    cluster: ControlPlane,
    prometheus: Prometheus,
    namespace: str,
    busybox: str,
    api_client: client.ApiClient,
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    create(cluster, namespace, site("queue", 7), web_deployment("queue", busybox, 1))
    wait_for(lambda: ready_replicas(apps, namespace, "queue") == 1, 120, "the queue pod ready")
    found: list[dict[str, Any]] = []

    def scraped() -> bool:
        found[:] = prometheus.query(core, f'{GAUGE}{{namespace="{namespace}"}}')
        return bool(found)

    wait_for(scraped, 60, f"Prometheus to scrape {GAUGE} from the pod")
    (series,) = found
    (pod,) = core.list_namespaced_pod(namespace, label_selector="app=queue").items
    labels = series["metric"]
    assert (labels["pod"], labels["namespace"], labels["app"]) == (pod.metadata.name, namespace, "queue")
    assert labels["instance"] == f"{pod.status.pod_ip}:{PORT}"
    assert float(series["value"][1]) == 7
