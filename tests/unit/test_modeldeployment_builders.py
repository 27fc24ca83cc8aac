"""The ModelDeployment's children, compared whole (kubespawner style): what a user gets, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_api import constants as c
from modelfleet_api.modeldeployment import InterceptorRoute, ModelDeployment, ModelDeploymentSpec
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_operator.config import load_config
from modelfleet_operator.serving import builders
from modelfleet_operator.serving.builders import Integrations, Owner
from modelfleet_operator.serving.desired import desired
from modelfleet_operator.serving.engines import HEALTH_PATHS
from modelfleet_operator.serving.policies.custom_metrics import CustomMetricsApi

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/modelfleet/serving-vllm:test"
IMAGES = dict.fromkeys(EngineType, IMAGE)
PROMETHEUS = "http://prometheus.monitoring:9090"
SCRAPED_ON_8000 = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "8000",
    "prometheus.io/path": "/metrics",
}
"""The engine's own /metrics on its API port (vLLM)."""
OWNER = Owner(name="llama3-8b", namespace="team-a", uid="uid-1")
REF = {
    "apiVersion": "modelfleet.io/v1alpha1",
    "kind": "ModelDeployment",
    "name": "llama3-8b",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def example(name: str) -> ModelDeploymentSpec:
    body = yaml.safe_load((REPO / "examples" / name).read_text())
    body["metadata"].update(namespace="team-a", uid="uid-1")
    return ModelDeployment.model_validate(body).spec


def spec_of(**fields: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": {"uri": "org/model"}, **fields})


def labels(component: str, track: str | None = None) -> dict[str, str]:
    result = {
        "app.kubernetes.io/name": "modeldeployment",
        "app.kubernetes.io/instance": "llama3-8b",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "modelfleet",
        "app.kubernetes.io/managed-by": "modelfleet-operator",
        "modelfleet.io/modeldeployment": "llama3-8b",
    }
    return result | ({"modelfleet.io/track": track} if track else {})


def meta(name: str, component: str, track: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": "team-a", "labels": labels(component, track), "ownerReferences": [REF]}


ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "MODELFLEET_SERVE_CONFIG", "value": "/etc/modelfleet/config.yaml"},
]
SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_vllm_example_deployment_whole() -> None:
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    track = builders.tracks(spec, IMAGES)[0]
    config_hash = builders.config_hash(builders.runtime_config(OWNER, spec, track))
    amounts = {"cpu": "36", "memory": "288Gi", "nvidia.com/gpu": "1"}
    mounts = [
        {"name": "config", "mountPath": "/etc/modelfleet", "readOnly": True},
        {"name": "model-cache", "mountPath": "/models", "readOnly": False},
    ]
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    expected = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("llama3-8b-stable", "server", "stable"),
        "spec": {
            "replicas": 1,
            "selector": {
                "matchLabels": {
                    "modelfleet.io/modeldeployment": "llama3-8b",
                    "app.kubernetes.io/component": "server",
                    "modelfleet.io/track": "stable",
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 3600,
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {
                    "labels": labels("server", "stable"),
                    "annotations": {
                        "modelfleet.io/config-hash": config_hash,
                        "kubectl.kubernetes.io/default-container": "server",
                        **SCRAPED_ON_8000,
                    },
                },
                "spec": {
                    "nodeSelector": {"node.kubernetes.io/instance-type": "Standard_NC80adis_H100_v5"},
                    "tolerations": [
                        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                        {
                            "key": "kubernetes.azure.com/scalesetpriority",
                            "operator": "Equal",
                            "value": "spot",
                            "effect": "NoSchedule",
                        },
                    ],
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": "kubernetes.azure.com/scalesetpriority",
                                                "operator": "In",
                                                "values": ["spot"],
                                            }
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "terminationGracePeriodSeconds": 120,
                    "shareProcessNamespace": True,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "server",
                            "image": IMAGE,
                            "command": ["modelfleet-serve"],
                            "args": ["--config", "/etc/modelfleet/config.yaml"],
                            "env": ENV,
                            "ports": [
                                {"name": "http", "containerPort": 8000},
                                {"name": "metrics", "containerPort": 9090},
                            ],
                            "startupProbe": probe
                            | {"periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 360},
                            "readinessProbe": probe
                            | {"periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
                            "livenessProbe": probe
                            | {"periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
                            "resources": {"requests": amounts, "limits": amounts},
                            "volumeMounts": [*mounts, {"name": "dshm", "mountPath": "/dev/shm"}],
                            "securityContext": SECURITY,
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "llama3-8b-stable-config"}},
                        {"name": "model-cache", "emptyDir": {"sizeLimit": "40Gi"}},
                        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
                    ],
                    "initContainers": [
                        {
                            "name": "model-download",
                            "image": IMAGE,
                            "command": ["modelfleet-serve", "download"],
                            "args": ["--config", "/etc/modelfleet/config.yaml"],
                            "env": ENV,
                            "resources": {
                                "requests": {"cpu": "36", "memory": "288Gi"},
                                "limits": {"cpu": "36", "memory": "288Gi"},
                            },
                            "volumeMounts": mounts,
                            "securityContext": SECURITY,
                        }
                    ],
                },
            },
        },
    }
    assert builders.deployment(OWNER, spec, track, health_path="/health") == expected


def test_vllm_example_config_map_is_what_the_launcher_reads() -> None:
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    manifest = builders.config_map(OWNER, spec, builders.tracks(spec, IMAGES)[0])
    assert manifest == (
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("llama3-8b-stable-config", "config", "stable"),
            "data": {"config.yaml": manifest["data"]["config.yaml"]},
        }
    )
    assert ServingRuntimeConfig.from_yaml(manifest["data"]["config.yaml"]).to_wire() == {
        "model": {
            "uri": "https://modelfleetmodels.blob.core.windows.net/models/Meta-Llama-3-8B-Instruct",
            "loadIn4bit": False,
            "trustRemoteCode": False,
        },
        "servedModelName": "llama-3-8b-instruct",
        "engine": {
            "type": "vllm",
            "settings": {
                "tensorParallelSize": 1,
                "maxModelLength": 8192,
                "dtype": "bfloat16",
                "gpuMemoryUtilization": 0.9,
                "prefixCaching": True,
                "loraAdapters": [],
                "extraArgs": [],
            },
        },
        "port": 8000,
        "host": "0.0.0.0",
        "metricsPort": 9090,
        "cacheDir": "/models",
    }


def test_keda_scaled_object_scales_the_stable_track_to_zero_on_queue_depth() -> None:
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                  integrations=Integrations(keda=True, gateway_api=False), prometheus_url=PROMETHEUS,
                  canary_ready=False)  # fmt: skip
    scaled = next(m for m in wanted.children if m["kind"] == "ScaledObject")
    assert scaled == (
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": meta("llama3-8b", "server"),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama3-8b-stable"},
                "pollingInterval": 15,
                "cooldownPeriod": 600,
                "minReplicaCount": 0,
                "maxReplicaCount": 4,
                "advanced": {
                    "horizontalPodAutoscalerConfig": {
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}
                    }
                },
                "triggers": [
                    {
                        "type": "prometheus",
                        "metricType": "AverageValue",
                        "metadata": {
                            "serverAddress": PROMETHEUS,
                            "query": (
                                'sum(vllm:num_requests_waiting{namespace="team-a",pod=~"llama3-8b-stable-.*"})'
                            ),
                            "threshold": "8",
                            "activationThreshold": "1",
                        },
                    }
                ],
            },
        }
    )
    assert wanted.autoscaling is not None and wanted.autoscaling.reason == c.REASON_KEDA_SCALED_OBJECT
    assert [m["kind"] for m in wanted.children] == [
        "ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "ScaledObject"
    ]  # fmt: skip
    assert wanted.endpoint == "http://llama3-8b.team-a.svc.cluster.local:8000/v1"


def test_without_keda_an_hpa_keeps_one_replica_and_says_so() -> None:
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    adapter = CustomMetricsApi(served=True, detail="APIService v1beta1.custom.metrics.k8s.io is Available")
    integrations = Integrations(keda=False, gateway_api=False, custom_metrics=adapter)
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=integrations,
                  prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
    hpa = next(m for m in wanted.children if m["kind"] == "HorizontalPodAutoscaler")
    assert hpa == (
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta("llama3-8b", "server"),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama3-8b-stable"},
                "minReplicas": 1,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "vllm:num_requests_waiting"},
                            "target": {"type": "AverageValue", "averageValue": "8"},
                        },
                    }
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
            },
        }
    )
    assert wanted.autoscaling is not None
    assert (wanted.autoscaling.status, wanted.autoscaling.reason) == (True, c.REASON_HPA_FALLBACK)
    assert "minReplicas 0 needs KEDA: the HPA keeps at least 1 replica" in wanted.autoscaling.message


def test_engine_without_the_metric_gets_no_autoscaler_and_a_condition() -> None:
    spec = spec_of(engine={"type": "transformers"}, autoscaling={"maxReplicas": 3, "target": 4})
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                  integrations=Integrations(keda=True, gateway_api=False), prometheus_url=PROMETHEUS,
                  canary_ready=False)  # fmt: skip
    assert {m["kind"] for m in wanted.children} == {
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    }
    assert wanted.autoscaling is not None
    assert (wanted.autoscaling.status, wanted.autoscaling.reason) == (False, c.REASON_AUTOSCALER_UNAVAILABLE)
    assert (
        "Engine transformers exports no metric for autoscaling.metric queueDepth"
        in wanted.autoscaling.message
    )


KEDA_AND_ADD_ON = Integrations(keda=True, gateway_api=False, keda_http=True)


def test_at_zero_the_http_add_on_holds_requests_and_its_trigger_wakes_the_engine_metric_scaler() -> None:
    """minReplicas 0 with the KEDA HTTP add-on: the ScaledObject keeps the engine's metric and gains the
    add-on's external-push trigger; the HTTPScaledObject routes the Service's names through the
    interceptor and makes no ScaledObject of its own; the condition and Available say what happens."""
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=KEDA_AND_ADD_ON,
                     prometheus_url=PROMETHEUS, add_on=builders.HttpAddOn("keda-http"),
                     canary_ready=False)  # fmt: skip
    assert [m["kind"] for m in wanted.children] == [
        "ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "HTTPScaledObject", "ScaledObject"
    ]  # fmt: skip
    scaled = next(m for m in wanted.children if m["kind"] == "ScaledObject")
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["prometheus", "external-push"]
    assert scaled["spec"]["triggers"][1]["metadata"] == {
        "scalerAddress": "keda-add-ons-http-external-scaler.keda-http:9090",
        "httpScaledObject": "llama3-8b-http",
    }
    routed = next(m for m in wanted.children if m["kind"] == "HTTPScaledObject")
    assert routed == {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": {
            **meta("llama3-8b-http", "server"),
            "annotations": {"httpscaledobject.keda.sh/skip-scaledobject-creation": "true"},
        },
        "spec": {
            "hosts": ["llama3-8b.team-a.svc.cluster.local", "llama3-8b.team-a.svc", "llama3-8b.team-a"],
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "llama3-8b-stable",
                "service": "llama3-8b",
                "port": 8000,
            },
            "replicas": {"min": 0, "max": 4},
            "timeouts": {"conditionWait": "600s", "responseHeader": "600s"},
        },
    }
    assert wanted.autoscaling is not None and wanted.autoscaling.status
    message = wanted.autoscaling.message
    assert "on vllm:num_requests_waiting at 8 per replica" in message
    assert "requests in flight through the KEDA HTTP add-on's interceptor (to wake it)" in message
    assert wanted.at_zero == (
        "At zero replicas a request sent through the KEDA HTTP add-on's interceptor "
        "(http://keda-add-ons-http-interceptor-proxy.keda-http:8080, "
        "Host llama3-8b.team-a.svc.cluster.local) is held for up to 600s while a replica starts, then "
        "answered (HTTPScaledObject llama3-8b-http); a request sent straight to Service llama3-8b is not "
        "held and fails while no replica runs."
    )
    assert wanted.at_zero in message
    assert wanted.interceptor == InterceptorRoute(
        url="http://keda-add-ons-http-interceptor-proxy.keda-http:8080/v1",
        host="llama3-8b.team-a.svc.cluster.local",
    ), "status.interceptor: where a client (a BenchmarkSweep's points) sends to wake it"


def test_at_zero_without_the_add_on_the_condition_says_nothing_wakes_it() -> None:
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                     integrations=Integrations(keda=True, gateway_api=False), prometheus_url=PROMETHEUS,
                     canary_ready=False)  # fmt: skip
    assert "HTTPScaledObject" not in [m["kind"] for m in wanted.children]
    assert wanted.at_zero is not None and wanted.at_zero.startswith("Nothing wakes it on a request")
    assert "Install the KEDA HTTP add-on" in wanted.at_zero
    assert wanted.autoscaling is not None and wanted.at_zero in wanted.autoscaling.message
    assert wanted.interceptor is None


def test_concurrent_requests_scale_any_engine_on_the_interceptors_count() -> None:
    """transformers exports no metric; the interceptor's count of requests in flight scales it."""
    spec = spec_of(
        engine={"type": "transformers"},
        autoscaling={"minReplicas": 0, "maxReplicas": 2, "metric": "concurrentRequests", "target": 3,
                     "coldStartTimeoutSeconds": 120},
    )  # fmt: skip
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=KEDA_AND_ADD_ON,
                     prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
    scaled = next(m for m in wanted.children if m["kind"] == "ScaledObject")
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["external-push"]
    routed = next(m for m in wanted.children if m["kind"] == "HTTPScaledObject")
    assert routed["spec"]["scalingMetric"] == {"concurrency": {"targetValue": 3}}
    assert routed["spec"]["timeouts"]["conditionWait"] == "120s"
    assert wanted.autoscaling is not None and wanted.autoscaling.status
    assert "interceptor (at 3 per replica)" in wanted.autoscaling.message
    assert wanted.interceptor is not None and wanted.interceptor.url.endswith(":8080/v1")


@pytest.mark.parametrize(
    ("integrations", "missing"),
    [
        (Integrations(keda=True, gateway_api=False), "the KEDA HTTP add-on is not installed"),
        (Integrations(keda=False, gateway_api=False, keda_http=True), "KEDA is not installed"),
        (Integrations(keda=False, gateway_api=False), "KEDA and the KEDA HTTP add-on are not installed"),
    ],
)
def test_concurrent_requests_without_keda_or_the_add_on_get_no_autoscaler_and_say_what_is_missing(
    integrations: Integrations, missing: str
) -> None:
    spec = spec_of(
        engine={"type": "transformers"},
        autoscaling={"minReplicas": 0, "maxReplicas": 2, "metric": "concurrentRequests", "target": 3},
    )
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=integrations,
                     prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
    assert not {"ScaledObject", "HTTPScaledObject", "HorizontalPodAutoscaler"} & {
        m["kind"] for m in wanted.children
    }
    assert wanted.autoscaling is not None
    assert (wanted.autoscaling.status, wanted.autoscaling.reason) == (False, c.REASON_AUTOSCALER_UNAVAILABLE)
    assert missing in wanted.autoscaling.message and "replicas stay at 1" in wanted.autoscaling.message


def test_canary_http_route_splits_by_weight_once_the_canary_is_ready() -> None:
    spec = example("modeldeployment-sglang-canary.yaml")
    gateway = Integrations(keda=False, gateway_api=True)
    ready = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=gateway,
                 prometheus_url=PROMETHEUS, canary_ready=True)  # fmt: skip
    route = next(m for m in ready.children if m["kind"] == "HTTPRoute")
    assert route == (
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": meta("llama3-8b", "server"),
            "spec": {
                "parentRefs": [{"group": "", "kind": "Service", "name": "llama3-8b", "port": 8000}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "llama3-8b-stable", "port": 8000, "weight": 90},
                            {"name": "llama3-8b-canary", "port": 8000, "weight": 10},
                        ]
                    }
                ],
            },
        }
    )
    names = [(m["kind"], m["metadata"]["name"]) for m in ready.children]
    assert names == [
        ("ConfigMap", "llama3-8b-stable-config"),
        ("ConfigMap", "llama3-8b-canary-config"),
        ("Service", "llama3-8b"),
        ("Service", "llama3-8b-stable"),
        ("Service", "llama3-8b-canary"),
        ("Deployment", "llama3-8b-stable"),
        ("Deployment", "llama3-8b-canary"),
        ("PodDisruptionBudget", "llama3-8b"),
        ("HTTPRoute", "llama3-8b"),
    ]
    assert ready.routed.reason == c.REASON_HTTP_ROUTE
    starting = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=gateway,
                    prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
    route = next(m for m in starting.children if m["kind"] == "HTTPRoute")
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    assert "The canary gets no traffic until its replicas are ready" in starting.routed.message


def test_canary_config_carries_its_own_engine_settings() -> None:
    spec = example("modeldeployment-sglang-canary.yaml")
    stable, canary = builders.tracks(spec, IMAGES)
    assert (stable.replicas, canary.replicas) == (2, 1)
    assert builders.runtime_config(OWNER, spec, stable).engine.settings.quantization is None
    assert builders.runtime_config(OWNER, spec, canary).engine.settings.quantization == "fp8"
    assert builders.runtime_config(OWNER, spec, canary).served_model_name == "qwen-chat"


def test_without_gateway_api_one_service_splits_by_replicas_and_says_so() -> None:
    spec = example("modeldeployment-sglang-canary.yaml")
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                  integrations=Integrations(keda=False, gateway_api=False), prometheus_url=PROMETHEUS,
                  canary_ready=True)  # fmt: skip
    kinds = [m["kind"] for m in wanted.children]
    assert "HTTPRoute" not in kinds and kinds.count("Service") == 1
    assert wanted.routed.reason == c.REASON_SERVICE_FALLBACK
    assert "the canary gets about 33% of requests (1 of 3 replicas) instead of canary.weight 10%" in (
        wanted.routed.message
    )


def test_service_and_pdb_select_every_track() -> None:
    selector = {"modelfleet.io/modeldeployment": "llama3-8b", "app.kubernetes.io/component": "server"}
    assert builders.service(OWNER, builders.EngineType.VLLM) == (
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("llama3-8b", "server"),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [
                    {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"},
                    {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"},
                ],
            },
        }
    )
    assert builders.pod_disruption_budget(OWNER) == (
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta("llama3-8b", "server"),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        }
    )


def test_pvc_cache_and_pvc_model_mounts_and_api_key() -> None:
    spec = spec_of(
        model={"uri": "pvc://weights/llama"},
        modelCache={"pvc": {"claimName": "cache", "readOnly": True}},
        apiKeySecret={"name": "llama-key"},
        env=[{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
    )
    track = builders.tracks(spec, IMAGES)[0]
    pod = builders.pod_template(OWNER, spec, track, health_path="/health")["spec"]
    assert "initContainers" not in pod  # read-only cache: nothing is downloaded
    assert pod["volumes"] == [
        {"name": "config", "configMap": {"name": "llama3-8b-stable-config"}},
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "cache", "readOnly": True}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        {"name": "model-pvc-0", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}},
    ]
    server = pod["containers"][0]
    assert server["volumeMounts"] == [
        {"name": "config", "mountPath": "/etc/modelfleet", "readOnly": True},
        {"name": "model-cache", "mountPath": "/models", "readOnly": True},
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "model-pvc-0", "mountPath": "/mnt/pvc/weights", "readOnly": True},
    ]
    assert server["env"][3:] == [
        {
            "name": "MODELFLEET_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "llama-key", "key": "api-key"}},
        },
        {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
    ]
    assert builders.runtime_config(OWNER, spec, track).api_key_env == "MODELFLEET_API_KEY"


def test_triton_exposes_grpc_and_its_metrics_and_kserve_endpoint() -> None:
    spec = spec_of(engine={"type": "triton-trtllm"})
    track = builders.tracks(spec, IMAGES)[0]
    server = builders.pod_template(OWNER, spec, track, health_path=HEALTH_PATHS[track.engine.type])["spec"][
        "containers"
    ][0]
    assert [p["containerPort"] for p in server["ports"]] == [8000, 9090, 8001, 8002]
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert builders.api_path(track.engine.type) == "/v2"


def test_fixed_replicas_and_defaults() -> None:
    assert builders.tracks(spec_of(), IMAGES)[0].replicas == 1
    assert builders.tracks(spec_of(replicas=0), IMAGES)[0].replicas == 0
    assert builders.tracks(spec_of(image="my/image:1"), IMAGES)[0].image == "my/image:1"
    assert builders.served_model_name(OWNER, spec_of()) == "llama3-8b"


def test_a_changed_runtime_config_rolls_the_pods() -> None:
    spec = spec_of()
    track = builders.tracks(spec, IMAGES)[0]

    def config_hash(of: ModelDeploymentSpec) -> str:
        template = builders.deployment(OWNER, of, track, health_path="/health")["spec"]["template"]
        annotation: str = template["metadata"]["annotations"][builders.CONFIG_HASH_ANNOTATION]
        return annotation

    assert config_hash(spec) == config_hash(spec_of())
    assert config_hash(spec_of(servedModelName="other")) != config_hash(spec)


GATED_WITH_OVERRIDES = {
    "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct", "tokenSecret": {"name": "hf-token"}},
    "resources": {"instanceType": "Standard_NC40adis_H100_v5", "spot": True},
    "env": [
        {"name": "OTEL_ENDPOINT", "valueFrom": {"configMapKeyRef": {"name": "otel", "key": "endpoint"}}},
        {
            "name": "SHIP_KEY",
            "valueFrom": {"secretKeyRef": {"name": "log-key", "key": "key", "optional": True}},
        },
    ],
    "podTemplate": {
        "metadata": {"labels": {"team": "ml"}, "annotations": {"example.com/owner": "ml"}},
        "spec": {
            "tolerations": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["1"]}]},
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["2"]}]},
                        ]
                    },
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 50,
                            "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]},
                        }
                    ],
                }
            },
            "imagePullSecrets": [{"name": "acr-pull"}],
            "volumes": [
                {"name": "ca", "secret": {"secretName": "corp-ca"}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            ],
            "volumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
            "sidecars": [
                {
                    "name": "log-shipper",
                    "image": "fluent/fluent-bit:3.2",
                    "env": [{"name": "SHIP_TO", "value": "https://logs.example.com"}],
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                    "volumeMounts": [{"name": "scratch", "mountPath": "/buffer"}],
                }
            ],
        },
    },
}


def test_secrets_and_pod_overrides_whole_pod() -> None:
    """A gated hub model (HF_TOKEN from its Secret in both containers), env from a ConfigMap and a
    Secret, and every kind of pod addition: the operator's labels, annotations, spot requirement, GPU
    toleration, volumes and containers stay; the user's are added (the spot requirement joins each of
    the user's required terms; the sidecar runs as a native sidecar before the model download)."""
    spec = spec_of(**GATED_WITH_OVERRIDES)
    track = builders.tracks(spec, IMAGES)[0]
    config_hash = builders.config_hash(builders.runtime_config(OWNER, spec, track))
    spot = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "In", "values": ["spot"]}
    env = [
        *ENV,
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}},
        {"name": "OTEL_ENDPOINT", "valueFrom": {"configMapKeyRef": {"name": "otel", "key": "endpoint"}}},
        {
            "name": "SHIP_KEY",
            "valueFrom": {"secretKeyRef": {"name": "log-key", "key": "key", "optional": True}},
        },
    ]
    amounts = {"cpu": "36", "memory": "288Gi"}
    mounts = [
        {"name": "config", "mountPath": "/etc/modelfleet", "readOnly": True},
        {"name": "model-cache", "mountPath": "/models", "readOnly": False},
    ]
    ca_mount = {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    assert builders.pod_template(OWNER, spec, track, health_path="/health") == {
        "metadata": {
            "labels": {"team": "ml", **labels("server", "stable")},
            "annotations": {
                "example.com/owner": "ml",
                "modelfleet.io/config-hash": config_hash,
                "kubectl.kubernetes.io/default-container": "server",
                **SCRAPED_ON_8000,
            },
        },
        "spec": {
            "nodeSelector": {"node.kubernetes.io/instance-type": "Standard_NC40adis_H100_v5"},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [spot, {"key": "zone", "operator": "In", "values": ["1"]}]},
                            {"matchExpressions": [spot, {"key": "zone", "operator": "In", "values": ["2"]}]},
                        ]
                    },
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 50,
                            "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]},
                        }
                    ],
                }
            },
            "tolerations": [
                {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                {
                    "key": "kubernetes.azure.com/scalesetpriority",
                    "operator": "Equal",
                    "value": "spot",
                    "effect": "NoSchedule",
                },
                {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
            ],
            "terminationGracePeriodSeconds": 120,
            "shareProcessNamespace": True,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "server",
                    "image": IMAGE,
                    "command": ["modelfleet-serve"],
                    "args": ["--config", "/etc/modelfleet/config.yaml"],
                    "env": env,
                    "ports": [
                        {"name": "http", "containerPort": 8000},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                    "startupProbe": probe
                    | {"periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 360},
                    "readinessProbe": probe
                    | {"periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
                    "livenessProbe": probe
                    | {"periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
                    "resources": {
                        "requests": amounts | {"nvidia.com/gpu": "1"},
                        "limits": amounts | {"nvidia.com/gpu": "1"},
                    },
                    "volumeMounts": [*mounts, {"name": "dshm", "mountPath": "/dev/shm"}, ca_mount],
                    "securityContext": SECURITY,
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "llama3-8b-stable-config"}},
                {"name": "model-cache", "emptyDir": {"sizeLimit": "200Gi"}},
                {"name": "dshm", "emptyDir": {"medium": "Memory"}},
                {"name": "ca", "secret": {"secretName": "corp-ca"}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            ],
            "initContainers": [
                {
                    "name": "log-shipper",
                    "image": "fluent/fluent-bit:3.2",
                    "env": [{"name": "SHIP_TO", "value": "https://logs.example.com"}],
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                    "volumeMounts": [{"name": "scratch", "mountPath": "/buffer"}],
                    "restartPolicy": "Always",
                    "securityContext": SECURITY,
                },
                {
                    "name": "model-download",
                    "image": IMAGE,
                    "command": ["modelfleet-serve", "download"],
                    "args": ["--config", "/etc/modelfleet/config.yaml"],
                    "env": env,
                    "resources": {"requests": amounts, "limits": amounts},
                    "volumeMounts": [*mounts, ca_mount],
                    "securityContext": SECURITY,
                },
            ],
            "imagePullSecrets": [{"name": "acr-pull"}],
        },
    }


def test_the_canary_reads_its_own_models_token() -> None:
    spec = spec_of(
        canary={"model": {"uri": "org/gated-v2", "tokenSecret": {"name": "other-token", "key": "hf"}}},
    )
    stable, canary = builders.tracks(spec, IMAGES)
    server = builders.pod_template(OWNER, spec, canary, health_path="/health")["spec"]["containers"][0]
    assert server["env"][3:] == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "other-token", "key": "hf"}}}
    ]
    assert (
        builders.pod_template(OWNER, spec, stable, health_path="/health")["spec"]["containers"][0]["env"]
        == ENV
    )


def test_the_http_add_ons_namespace_comes_from_the_environment_and_is_checked() -> None:
    assert load_config([], {}).keda_http_namespace == "keda"
    assert (
        load_config([], {"MODELFLEET_KEDA_HTTP_NAMESPACE": "autoscaling"}).keda_http_namespace
        == "autoscaling"
    )
    with pytest.raises(ValueError, match="MODELFLEET_KEDA_HTTP_NAMESPACE='Keda_1' is not valid"):
        load_config([], {"MODELFLEET_KEDA_HTTP_NAMESPACE": "Keda_1"})


@pytest.mark.parametrize(
    ("engine", "port"),
    [
        (EngineType.VLLM, "8000"),
        (EngineType.SGLANG, "8000"),
        (EngineType.TGI, "8000"),
        (EngineType.TRITON_TRTLLM, "8002"),
        (EngineType.LMDEPLOY, "9090"),
        (EngineType.TRANSFORMERS, "9090"),
    ],
)
def test_prometheus_scrapes_the_engines_own_metrics_else_the_launchers(engine: EngineType, port: str) -> None:
    assert builders.scrape_annotations(engine) == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": port,
        "prometheus.io/path": "/metrics",
    }


def test_with_a_trigger_authentication_the_prometheus_trigger_references_it_and_the_condition_says_so() -> (
    None
):
    """Azure Monitor managed Prometheus: the chart's ClusterTriggerAuthentication (workload identity)."""
    spec = example("modeldeployment-vllm-llama3-8b.yaml")
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                     integrations=Integrations(keda=True, gateway_api=False), prometheus_url=PROMETHEUS,
                     keda_authentication="modelfleet-azure-monitor", canary_ready=False)  # fmt: skip
    scaled = next(m for m in wanted.children if m["kind"] == "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["authenticationRef"] == {
        "name": "modelfleet-azure-monitor",
        "kind": "ClusterTriggerAuthentication",
    }
    assert wanted.autoscaling is not None
    assert f"(Prometheus {PROMETHEUS}, as ClusterTriggerAuthentication modelfleet-azure-monitor)" in (
        wanted.autoscaling.message
    )
    unauthenticated = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                              integrations=Integrations(keda=True, gateway_api=False),
                              prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
    assert (
        "authenticationRef"
        not in next(m for m in unauthenticated.children if m["kind"] == "ScaledObject")["spec"]["triggers"][0]
    )


def test_the_trigger_authentication_comes_from_the_environment_and_is_checked() -> None:
    assert load_config([], {}).keda_trigger_authentication is None
    env = {"MODELFLEET_KEDA_TRIGGER_AUTHENTICATION": "modelfleet-azure-monitor"}
    assert load_config([], env).keda_trigger_authentication == "modelfleet-azure-monitor"
    with pytest.raises(ValueError, match="MODELFLEET_KEDA_TRIGGER_AUTHENTICATION='Bad_Name' is not valid"):
        load_config([], {"MODELFLEET_KEDA_TRIGGER_AUTHENTICATION": "Bad_Name"})


def test_with_the_prometheus_operator_each_track_gets_a_pod_monitor_of_its_engines_metrics() -> None:
    """The stable vLLM track: its engine's /metrics on the API port and the launcher's; a canary on
    transformers (no metrics of its own): the launcher's only."""
    spec = spec_of(canary={"engine": {"type": "transformers"}, "weight": 10})
    monitored = Integrations(keda=False, gateway_api=False, pod_monitor=True)
    wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=monitored,
                     prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
    monitors = [m for m in wanted.children if m["kind"] == "PodMonitor"]
    assert monitors == [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": meta(f"llama3-8b-{track}", "server", track),
            "spec": {
                "selector": {
                    "matchLabels": {
                        "modelfleet.io/modeldeployment": "llama3-8b",
                        "app.kubernetes.io/component": "server",
                        "modelfleet.io/track": track,
                    }
                },
                "podMetricsEndpoints": [{"port": port, "path": "/metrics"} for port in ports],
            },
        }
        for track, ports in (("stable", ["http", "metrics"]), ("canary", ["metrics"]))
    ]
    without = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS,
                      integrations=Integrations(keda=False, gateway_api=False), prometheus_url=PROMETHEUS,
                      canary_ready=False)  # fmt: skip
    assert "PodMonitor" not in [m["kind"] for m in without.children]


def test_with_azure_managed_prometheus_each_track_gets_a_pod_monitor_of_the_add_ons_group() -> None:
    """The AKS metrics add-on reads only azmonitoring.coreos.com: the same monitor there, with the label
    limits Azure's template sets; with both CRDs served, each scraper gets its own."""
    spec = spec_of(canary={"engine": {"type": "transformers"}, "weight": 10})

    def monitors(integrations: Integrations) -> list[dict[str, Any]]:
        wanted = desired(OWNER, spec, images=IMAGES, health_paths=HEALTH_PATHS, integrations=integrations,
                         prometheus_url=PROMETHEUS, canary_ready=False)  # fmt: skip
        return [m for m in wanted.children if m["kind"] == "PodMonitor"]

    azure = monitors(Integrations(keda=False, gateway_api=False, azure_pod_monitor=True))
    oss = monitors(Integrations(keda=False, gateway_api=False, pod_monitor=True))
    assert [m["apiVersion"] for m in azure] == ["azmonitoring.coreos.com/v1"] * 2
    for azure_monitor, oss_monitor in zip(azure, oss, strict=True):
        limits = {"labelLimit": 63, "labelNameLengthLimit": 511, "labelValueLengthLimit": 1023}
        assert azure_monitor["spec"] == {**limits, **oss_monitor["spec"]}
        assert azure_monitor["metadata"] == oss_monitor["metadata"]
    both = monitors(Integrations(keda=False, gateway_api=False, pod_monitor=True, azure_pod_monitor=True))
    assert sorted(m["apiVersion"] for m in both) == sorted(["monitoring.coreos.com/v1"] * 2 + [
        "azmonitoring.coreos.com/v1"] * 2)  # fmt: skip


def test_tritons_pod_monitor_scrapes_its_metrics_port() -> None:
    spec = spec_of(engine={"type": "triton-trtllm"}, autoscaling=None, replicas=1)
    (track,) = builders.tracks(spec, IMAGES)
    endpoints = builders.pod_monitor(OWNER, track)["spec"]["podMetricsEndpoints"]
    assert endpoints == [
        {"port": "engine-metrics", "path": "/metrics"},
        {"port": "metrics", "path": "/metrics"},
    ]
