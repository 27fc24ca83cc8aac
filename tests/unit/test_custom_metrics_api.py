"""The HPA fallback and the custom metrics API it reads: the policy that judges the adapter's
APIServices, the Autoscaling condition it gives, and the ModelDeployment pass that recovers once an
adapter's APIService becomes Available (over the in-memory API's indexes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.serving import EngineType
from modelfleet_operator.common import indexes as ix
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.serving.policies.custom_metrics import (
    NOT_FOUND,
    CustomMetricsApi,
    custom_metrics_api,
)
from modelfleet_operator.serving.reconcile import ModelDeploymentController

from tests.unit.fake_kube import FakeKube, Harness

pytestmark = pytest.mark.unit

V1BETA1 = "v1beta1.custom.metrics.k8s.io"
V1BETA2 = "v1beta2.custom.metrics.k8s.io"
NOW = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)


def api_service(name: str, status: str | None, reason: str = "", message: str = "") -> dict[str, Any]:
    """An APIService as the aggregator leaves it (``status`` None: not checked yet)."""
    version, _, group = name.partition(".")
    body: dict[str, Any] = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": name, "namespace": ""},
        "spec": {
            "group": group,
            "version": version,
            "service": {"name": "prometheus-adapter", "namespace": "monitoring"},
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
    if status is not None:
        condition = {"type": "Available", "status": status, "reason": reason, "message": message}
        body["status"] = {"conditions": [condition]}
    return body


def summary(body: dict[str, Any]) -> dict[str, Any]:
    return ix.api_service_summary(body)


def test_no_adapter_apiservice_means_not_served_and_names_both_versions() -> None:
    assert custom_metrics_api({}) == NOT_FOUND
    assert custom_metrics_api({V1BETA1: None, V1BETA2: None}) == CustomMetricsApi(
        served=False, detail=f"no APIService {V1BETA2} or {V1BETA1} exists"
    )


def test_an_apiservice_that_is_not_available_is_quoted_with_the_aggregators_reason() -> None:
    missing = summary(
        api_service(
            V1BETA1, "False", "ServiceNotFound", 'service/prometheus-adapter in "monitoring" is not present'
        )
    )
    assert custom_metrics_api({V1BETA1: missing}) == CustomMetricsApi(
        served=False,
        detail=(
            f"APIService {V1BETA1} is not Available (ServiceNotFound: "
            'service/prometheus-adapter in "monitoring" is not present)'
        ),
    )
    unchecked = summary(api_service(V1BETA2, None))
    assert custom_metrics_api({V1BETA2: unchecked}).detail == (
        f"APIService {V1BETA2} is not Available (the aggregator has not checked it yet)"
    )


def test_either_version_available_serves_it_and_the_newest_is_named() -> None:
    down = summary(api_service(V1BETA1, "False", "FailedDiscoveryCheck", "no response"))
    up = summary(api_service(V1BETA2, "True", "Passed", "all checks passed"))
    assert custom_metrics_api({V1BETA1: down, V1BETA2: up}) == CustomMetricsApi(
        served=True, detail=f"APIService {V1BETA2} is Available"
    )
    both = summary(api_service(V1BETA1, "True", "Passed", "all checks passed"))
    assert custom_metrics_api({V1BETA1: both, V1BETA2: up}).detail == f"APIService {V1BETA2} is Available"


def test_an_apiservice_being_deleted_does_not_serve() -> None:
    body = api_service(V1BETA1, "True", "Passed", "all checks passed")
    body["metadata"]["deletionTimestamp"] = "2026-12-02T23:00:00Z"
    assert summary(body) == {
        "available": False,
        "reason": "Deleting",
        "message": "the APIService is being deleted",
    }
    assert not custom_metrics_api({V1BETA1: summary(body)}).served


def make(kube: FakeKube) -> Harness:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llm", "namespace": "team-a", "uid": "md-uid", "generation": 1},
        "spec": {
            "model": {"uri": "org/model"},
            "autoscaling": {"minReplicas": 0, "maxReplicas": 3, "metric": "queueDepth", "target": 4},
        },
    }
    controller = ModelDeploymentController(
        OperatorConfig(serving_images=dict.fromkeys(EngineType, "serve:1"))
    )
    return Harness(kube, controller, body, lambda: NOW)


def test_the_hpa_is_applied_without_an_adapter_the_condition_says_what_to_install_and_recovers() -> None:
    """The pass reads the adapter's APIServices from the indexes (as kopf's would hold them)."""
    kube = FakeKube()
    md = make(kube)
    md.reconcile()

    assert ("HorizontalPodAutoscaler", "llm") in kube.applies, "applied: it scales once an adapter serves"
    status, reason = md.conditions()[c.COND_AUTOSCALING]
    assert (status, reason) == ("False", c.REASON_CUSTOM_METRICS_UNAVAILABLE)
    assert ("Warning", c.REASON_CUSTOM_METRICS_UNAVAILABLE) in md.events
    message = next(x for x in md.status["conditions"] if x["type"] == c.COND_AUTOSCALING)["message"]
    assert message == (
        "KEDA is not installed and HorizontalPodAutoscaler llm cannot scale: it reads the pod metric "
        "vllm:num_requests_waiting from the custom metrics API (custom.metrics.k8s.io), which is not served "
        f"(no APIService {V1BETA2} or {V1BETA1} exists). Replicas stay at their count, within 1-3. Install a "
        "custom-metrics adapter such as prometheus-adapter with a rule that serves vllm:num_requests_waiting "
        "as the pods metric vllm:num_requests_waiting, or install KEDA, which reads Prometheus itself."
    )

    kube.add(api_service(V1BETA1, "False", "MissingEndpoints", "endpoints for service/prometheus-adapter"))
    md.reconcile()
    message = next(x for x in md.status["conditions"] if x["type"] == c.COND_AUTOSCALING)["message"]
    assert md.conditions()[c.COND_AUTOSCALING] == ("False", c.REASON_CUSTOM_METRICS_UNAVAILABLE)
    assert f"(APIService {V1BETA1} is not Available (MissingEndpoints: endpoints for " in message

    kube.add(api_service(V1BETA1, "True", "Passed", "all checks passed"))
    md.reconcile()
    assert md.conditions()[c.COND_AUTOSCALING] == ("True", c.REASON_HPA_FALLBACK)
    message = next(x for x in md.status["conditions"] if x["type"] == c.COND_AUTOSCALING)["message"]
    assert message == (
        "KEDA is not installed; HorizontalPodAutoscaler llm scales 1-3 replicas on the pod metric "
        f"vllm:num_requests_waiting from the custom metrics API (APIService {V1BETA1} is Available; its "
        "adapter must serve that metric). minReplicas 0 needs KEDA: the HPA keeps at least 1 replica. "
        "Install KEDA for scale to zero."
    )
