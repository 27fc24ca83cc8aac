"""KEDA and the KEDA HTTP add-on, each built from its Go module, running as pods on the real node.

- A ScaledObject with a prometheus trigger scales a Deployment of workers from zero to three on a
  queue depth Prometheus scrapes from another pod, and back to zero when the queue drains. The metric
  comes from the queue, not from the workers: at zero replicas the workers have no pod to scrape, the
  query is empty (KEDA reads 0) and nothing would ever wake them. That is the trap issue 14 names for
  the engines' own metrics, and a first version of this test fell into it: KEDA deactivated the
  Deployment before Prometheus first scraped it, and the metric never came back.
- An HTTPScaledObject holds requests sent while a Deployment is at zero, scales it to one, answers
  every one of them, and scales back to zero after its idle period.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from hack.thirdparty.keda import Keda
from hack.thirdparty.prometheus import URL_IN_CLUSTER, Prometheus
from tests.e2e.workloads import (
    GAUGE,
    PAGE,
    PORT,
    create,
    ready_replicas,
    replicas,
    service,
    site,
    web_deployment,
)

pytestmark = pytest.mark.e2e


def test_keda_scales_workers_from_zero_on_a_prometheus_metric_and_back_to_zero(
    cluster: ControlPlane,
    prometheus: Prometheus,
    keda: Keda,
    namespace: str,
    busybox: str,
    api_client: client.ApiClient,
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    # The queue (7 waiting) exports its depth; the workers start at zero and export nothing.
    create(cluster, namespace, site("queue", 7), web_deployment("queue", busybox, 1))
    create(cluster, namespace, site("worker", 0), web_deployment("worker", busybox, 0, scraped=False))
    depth = f'{GAUGE}{{namespace="{namespace}",app="queue"}}'
    keda.wait_for(namespace, lambda: prometheus.query(core, depth), 120, f"Prometheus to scrape {depth}")
    scaled_object = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "worker"},
        "spec": {
            "scaleTargetRef": {"name": "worker"},
            "pollingInterval": 2,
            "cooldownPeriod": 5,
            "minReplicaCount": 0,
            "maxReplicaCount": 3,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}}}
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": URL_IN_CLUSTER,
                        "query": f"max({depth})",
                        "threshold": "2",
                        "activationThreshold": "1",
                    },
                }
            ],
        },
    }
    create(cluster, namespace, scaled_object)
    # KEDA activates the workers (depth 7 > 1), then its HPA wants ceil(7 / 2) = 4, capped at 3.
    keda.wait_for(
        namespace,
        lambda: ready_replicas(apps, namespace, "worker") == 3,
        240,
        "KEDA to scale the workers to 3",
    )

    # The API server serves the metric through KEDA's metrics API server (the aggregation layer).
    hpa = client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler(
        "keda-hpa-worker", namespace
    )
    metric = hpa.spec.metrics[0].external.metric.name
    selector = urllib.parse.quote("scaledobject.keda.sh/name=worker")
    raw = cluster.kubectl(
        "get",
        "--raw",
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}?labelSelector={selector}",
    ).stdout
    (item,) = json.loads(raw)["items"]
    assert float(item["value"]) == 7, item

    # The queue drains: below the activation threshold, KEDA takes the workers back to zero.
    core.patch_namespaced_config_map("queue", namespace, {"data": site("queue", 0)["data"]})
    keda.wait_for(
        namespace, lambda: replicas(apps, namespace, "worker") == 0, 240, "KEDA to scale the workers to 0"
    )


HELD_REQUESTS = 5


def test_http_add_on_holds_requests_at_zero_answers_them_and_returns_to_zero(
    cluster: ControlPlane,
    keda: Keda,
    namespace: str,
    busybox: str,
    api_client: client.ApiClient,
    record_property: Any,
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    host = "web.modelfleet.test"
    create(cluster, namespace, site("web", 0), web_deployment("web", busybox, 0), service("web"))
    http_scaled_object = {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": {"name": "web"},
        "spec": {
            "hosts": [host],
            "scaleTargetRef": {
                "name": "web",
                "kind": "Deployment",
                "apiVersion": "apps/v1",
                "service": "web",
                "port": PORT,
            },
            "replicas": {"min": 0, "max": 1},
            "scaledownPeriod": 10,
            # A cold start on this shared 2-core node can take longer than the interceptor's default 20 s.
            "timeouts": {"conditionWait": "180s", "responseHeader": "10s"},
        },
    }
    create(cluster, namespace, http_scaled_object)
    keda.wait_for(
        namespace, lambda: f"{namespace}/web" in keda.routed(core), 60, "the interceptor to route the host"
    )
    keda.wait_for(
        namespace,
        lambda: client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            "keda.sh", "v1alpha1", namespace, "scaledobjects"
        )["items"],
        60,
        "the add-on's operator to make the ScaledObject",
    )
    assert replicas(apps, namespace, "web") == 0

    url = keda.interceptor_url(core)

    def held_request(_: int) -> tuple[int, str, float]:
        request = urllib.request.Request(f"{url}/", headers={"Host": host})
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=200) as response:
            return response.status, response.read().decode(), time.monotonic() - started

    with ThreadPoolExecutor(HELD_REQUESTS) as pool:
        answers = list(pool.map(held_request, range(HELD_REQUESTS)))
    # Every request sent at zero is answered by the pod the add-on started for them; none is lost.
    assert [(status, body) for status, body, _ in answers] == [(200, PAGE)] * HELD_REQUESTS
    assert replicas(apps, namespace, "web") == 1
    cold_start = max(seconds for _, _, seconds in answers)
    record_property("cold_start_seconds", round(cold_start, 1))

    keda.wait_for(
        namespace, lambda: replicas(apps, namespace, "web") == 0, 180, "the add-on to scale web to 0"
    )
