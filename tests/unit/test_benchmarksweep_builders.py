"""The children of a BenchmarkSweep, each compared whole with what a user gets (pure)."""

from __future__ import annotations

import pytest
import yaml
from modelfleet_api.benchmark import Slos
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec, PointStatus
from modelfleet_api.common import SecretKeyRef
from modelfleet_api.constants import PointPhase
from modelfleet_api.quality import QualitySpec
from modelfleet_api.serving import EngineType
from modelfleet_api.sweepplot import PANELS, PlotPoint, render_html
from modelfleet_operator.benchmark import builders
from modelfleet_operator.benchmark.builders import Endpoint, Owner
from modelfleet_operator.benchmark.grid import expand_points, expand_targets

pytestmark = pytest.mark.unit

OWNER = Owner(name="sw", namespace="ml", uid="uid-1")
REFERENCE = {
    "apiVersion": "modelfleet.io/v1alpha1",
    "kind": "BenchmarkSweep",
    "name": "sw",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
SPEC = BenchmarkSweepSpec.model_validate(
    {
        "targets": [
            {
                "name": "llama",
                "template": {
                    "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
                    "engine": {"type": "vllm"},
                    "resources": {"instanceType": "Standard_NC40adis_H100_v5"},
                },
                "axes": {"engine": ["vllm", "triton-trtllm"]},
            }
        ],
        "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}, "seed": 7},
        "load": {"concurrency": [1, 8], "requests": 200, "warmupRequests": 10},
        "tokenLengths": [{"inputTokens": 1024, "outputTokens": 256}],
        "slos": {"ttftP95Ms": 500},
        "sinks": {"pushgateway": {"url": "http://pushgateway.monitoring:9091"}},
    }
)
TARGETS = expand_targets(OWNER.names, SPEC)
POINTS = expand_points(TARGETS, SPEC)


def labels(component: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "benchmarksweep",
        "app.kubernetes.io/instance": "sw",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "modelfleet",
        "app.kubernetes.io/managed-by": "modelfleet-operator",
        "modelfleet.io/benchmarksweep": "sw",
        **extra,
    }


def test_expanded_model_deployment() -> None:
    assert builders.model_deployment(OWNER, TARGETS[1]) == {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "sw-llama-1",
            "namespace": "ml",
            "labels": labels("server", **{"modelfleet.io/sweep-target": "sw-llama-1"}),
            "ownerReferences": [REFERENCE],
        },
        "spec": TARGETS[1].template.to_wire() if TARGETS[1].template else None,
    }
    assert builders.model_deployment(OWNER, TARGETS[1])["spec"]["engine"]["type"] == "triton-trtllm"


def test_runtime_config_of_a_triton_point() -> None:
    endpoint = Endpoint(
        url="http://sw-llama-1.ml.svc.cluster.local:8000/v2",
        served_model="ensemble",
        engine=EngineType.TRITON_TRTLLM,
        tokenizer="meta-llama/Llama-3.1-8B-Instruct",
    )
    config = builders.runtime_config(OWNER, SPEC, POINTS[3], endpoint)
    assert config.to_wire() == {
        "targetUrl": "http://sw-llama-1.ml.svc.cluster.local:8000",
        "targetName": "sw-llama-1",
        "model": "ensemble",
        "protocol": "kserve-v2-http",
        "kserve": {
            "textInput": "text_input",
            "maxTokens": "max_tokens",
            "stream": "stream",
            "textOutput": "text_output",
            "streaming": True,
        },
        "workload": {
            "synthetic": {
                "inputTokens": {
                    "distribution": "constant",
                    "mean": 1024,
                    "stddev": 0.0,
                    "min": 1,
                    "max": 1048576,
                },
                "outputTokens": {
                    "distribution": "constant",
                    "mean": 256,
                    "stddev": 0.0,
                    "min": 1,
                    "max": 1048576,
                },
            },
            "seed": 7,
            "ignoreEos": False,
        },
        "load": {
            "requests": 200,
            "warmupRequests": 10,
            "maxInFlight": 1024,
            "requestTimeoutSeconds": 600.0,
            "lateThresholdMs": 10.0,
            "mode": "closed-loop",
            "concurrency": 8,
            "arrival": "poisson",
        },
        "slos": {"ttftP95Ms": 500.0},
        "tokenizer": "meta-llama/Llama-3.1-8B-Instruct",
        "workers": 1,
        "outputDir": "/results",
        "sinks": {"pushgateway": {"url": "http://pushgateway.monitoring:9091", "job": "modelfleet-bench"}},
    }


def test_point_config_map_and_job() -> None:
    point = POINTS[0]
    endpoint = Endpoint(
        url="http://sw-llama-0.ml.svc.cluster.local:8000/v1",
        served_model="sw-llama-0",
        engine=EngineType.VLLM,
        tokenizer="meta-llama/Llama-3.1-8B-Instruct",
        api_key_secret=SecretKeyRef(name="llama-key"),
    )
    config = builders.runtime_config(OWNER, SPEC, point, endpoint)
    assert config.protocol == "openai-chat" and config.api_key_env == "MODELFLEET_BENCH_API_KEY"
    point_labels = {"modelfleet.io/sweep-point": "0", "modelfleet.io/sweep-target": "sw-llama-0"}
    config_map = builders.point_config_map(OWNER, point, config)
    assert config_map == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "sw-point-0-config",
            "namespace": "ml",
            "labels": labels("config", **point_labels),
            "ownerReferences": [REFERENCE],
        },
        "data": {"config.yaml": config.to_yaml()},
    }
    assert (
        yaml.safe_load(config_map["data"]["config.yaml"])["targetUrl"]
        == "http://sw-llama-0.ml.svc.cluster.local:8000"
    )
    assert builders.point_job(OWNER, point, image="bench:1", api_key_secret=endpoint.api_key_secret) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "sw-point-0",
            "namespace": "ml",
            "labels": labels("benchmark", **point_labels),
            "ownerReferences": [REFERENCE],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels("benchmark", **point_labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "shareProcessNamespace": True,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "bench",
                            "image": "bench:1",
                            "command": ["modelfleet-bench", "run"],
                            "env": [
                                {"name": "MODELFLEET_BENCH_CONFIG", "value": "/etc/modelfleet/config.yaml"},
                                {
                                    "name": "MODELFLEET_BENCH_API_KEY",
                                    "valueFrom": {"secretKeyRef": {"name": "llama-key", "key": "api-key"}},
                                },
                            ],
                            "resources": {
                                "requests": {"cpu": "1", "memory": "2Gi"},
                                "limits": {"memory": "2Gi"},
                            },
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/modelfleet", "readOnly": True},
                                {"name": "results", "mountPath": "/results"},
                            ],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "sw-point-0-config"}},
                        {"name": "results", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def test_results_config_map() -> None:
    measured = PointStatus(
        index=0,
        target="llama(engine=vllm)",
        deployment="sw-llama-0",
        load="concurrency=1",
        phase=PointPhase.SUCCEEDED,
        output_tokens_per_second=812.5,
    )
    slos = Slos(ttft_p95_ms=500)
    plot = render_html(
        # no level recorded: placed by its index
        [PlotPoint("llama(engine=vllm)", "concurrency=1", 0.0, 812.5, dict.fromkeys(m for m, _ in PANELS))],
        slos,
        "BenchmarkSweep ml/sw",
    )
    assert builders.results_config_map(OWNER, [measured], slos) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "sw-results",
            "namespace": "ml",
            "labels": labels("benchmark"),
            "ownerReferences": [REFERENCE],
        },
        "data": {
            "results.json": "[\n  {\n"
            '    "outputTokensPerSecond": 812.5,\n'
            '    "index": 0,\n'
            '    "target": "llama(engine=vllm)",\n'
            '    "deployment": "sw-llama-0",\n'
            '    "load": "concurrency=1",\n'
            '    "phase": "Succeeded"\n'
            "  }\n]\n",
            "sweep.html": plot,
        },
    }
    assert builders.plot_link(OWNER).to_wire() == {"configMap": "sw-results", "key": "sweep.html"}


@pytest.mark.parametrize("blob_uri", ["az://results/bench", "az://results/bench/"])
def test_each_point_uploads_under_its_own_blob_prefix(blob_uri: str) -> None:
    spec = SPEC.model_copy(update={"sinks": SPEC.sinks.model_copy(update={"blob_uri": blob_uri})})
    endpoint = Endpoint(
        url="http://sw-llama-0.ml.svc.cluster.local:8000/v1",
        served_model="sw-llama-0",
        engine=EngineType.VLLM,
        tokenizer="meta-llama/Llama-3.1-8B-Instruct",
    )
    prefixes = [builders.runtime_config(OWNER, spec, p, endpoint).sinks.blob_uri for p in POINTS]
    assert prefixes == [f"az://results/bench/ml/sw/point-{i}" for i in range(len(POINTS))]
    sinks = builders.runtime_config(OWNER, spec, POINTS[0], endpoint).sinks.to_wire()
    assert sinks == {
        "pushgateway": {"url": "http://pushgateway.monitoring:9091", "job": "modelfleet-bench"},
        "blobUri": "az://results/bench/ml/sw/point-0",
    }
    # without sinks.blobUri the point has no blob sink (test_runtime_config_of_a_triton_point)
    assert builders.runtime_config(OWNER, SPEC, POINTS[0], endpoint).sinks.blob_uri is None


def test_the_longest_blob_prefix_still_fits_a_point_config() -> None:
    """sinks.blobUri at its limit under a sweep name and namespace at theirs: the point's prefix passes
    the runtime config's own bound (the config is validated on construction)."""
    uri = "https://acct.blob.core.windows.net/results/" + "p" * (1024 - 43)
    spec = SPEC.model_copy(update={"sinks": SPEC.sinks.model_copy(update={"blob_uri": uri})})
    assert len(uri) == 1024
    owner = Owner(name="s" * 63, namespace="n" * 63, uid="uid-1")
    endpoint = Endpoint(url="http://x:8000", served_model="m", engine=EngineType.VLLM, tokenizer="t")
    prefix = builders.runtime_config(owner, spec, POINTS[-1], endpoint).sinks.blob_uri
    assert prefix == f"{uri}/{'n' * 63}/{'s' * 63}/point-{POINTS[-1].index}"


@pytest.mark.parametrize(
    ("endpoint", "base"),
    [
        ("http://m.ml.svc.cluster.local:8000/v1", "http://m.ml.svc.cluster.local:8000"),
        ("http://m.ml.svc.cluster.local:8000/v2/", "http://m.ml.svc.cluster.local:8000"),
        ("http://m:8000", "http://m:8000"),
    ],
)
def test_target_url_drops_the_api_path_the_client_adds(endpoint: str, base: str) -> None:
    assert builders.target_url(endpoint) == base


def test_a_point_reads_the_tokenizer_of_a_model_on_a_claim_from_that_claim_mounted_read_only() -> None:
    """A trained model on ``pvc://`` (what a TrainingJob writes): the point pod mounts its claim
    read-only and reads the tokenizer there; a sweep that names its tokenizer mounts nothing; a model in
    blob storage gives no tokenizer (the pod downloads nothing: the bench client asks for one)."""
    point = POINTS[0]
    endpoint = Endpoint(
        url="http://chat.ml.svc.cluster.local:8000/v1",
        served_model="tiny",
        engine=EngineType.TRANSFORMERS,
        tokenizer="pvc://work/output",
    )
    assert builders.runtime_config(OWNER, SPEC, point, endpoint).tokenizer == "/mnt/pvc/work/output"
    claims = builders.read_claims(SPEC, endpoint)
    assert claims == {"work": True}
    pod = builders.point_job(OWNER, point, image="bench:1", api_key_secret=None, claims=claims)["spec"][
        "template"
    ]["spec"]
    assert pod["volumes"][-1] == {
        "name": "model-pvc-0",
        "persistentVolumeClaim": {"claimName": "work", "readOnly": True},
    }
    assert pod["containers"][0]["volumeMounts"][-1] == {
        "name": "model-pvc-0",
        "mountPath": "/mnt/pvc/work",
        "readOnly": True,
    }
    named = SPEC.model_copy(update={"tokenizer": "/tokenizers/llama"})
    assert builders.runtime_config(OWNER, named, point, endpoint).tokenizer == "/tokenizers/llama"
    assert builders.read_claims(named, endpoint) == {}
    in_blob = Endpoint(**{**endpoint.__dict__, "tokenizer": "az://models/tiny"})
    assert builders.runtime_config(OWNER, SPEC, point, in_blob).tokenizer is None
    assert builders.read_claims(SPEC, in_blob) == {}


def test_the_quality_sections_files_on_claims_are_mounted_read_only_beside_the_models() -> None:
    """A reference set (or lm-eval task directory) on a claim is read where the claim is mounted: the
    point pod mounts it read-only, once even when the model's tokenizer is on the same claim."""
    endpoint = Endpoint(
        url="http://chat.ml.svc.cluster.local:8000/v1",
        served_model="tiny",
        engine=EngineType.TRANSFORMERS,
        tokenizer="pvc://work/output",
    )
    quality = {
        "referenceSet": {"uri": "pvc://evals/qa.jsonl"},
        "lmEval": {"tasks": ["t"], "tasksUri": "pvc://work/tasks"},
    }
    scored = SPEC.model_copy(update={"quality": QualitySpec.model_validate(quality)})
    assert builders.read_claims(scored, endpoint) == {"work": True, "evals": True}
    named = scored.model_copy(update={"tokenizer": "/tokenizers/llama"})
    assert builders.read_claims(named, endpoint) == {"evals": True, "work": True}


def test_a_point_against_a_deployment_the_http_add_on_routes_sends_through_the_interceptor() -> None:
    """``status.interceptor``: the points send there with the deployment's Host, so a request that finds
    it at zero is held and wakes it; the engine's counters are read on the Service."""
    from modelfleet_operator.benchmark.plan import endpoint_of

    deployment = {
        "metadata": {"name": "llama", "namespace": "ml"},
        "spec": {"model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"}},
        "status": {
            "phase": "ScaledToZero",
            "endpoint": "http://llama.ml.svc.cluster.local:8000/v1",
            "interceptor": {
                "url": "http://keda-add-ons-http-interceptor-proxy.keda:8080/v1",
                "host": "llama.ml.svc.cluster.local",
            },
        },
    }
    endpoint = endpoint_of(deployment)
    assert endpoint == Endpoint(
        url="http://keda-add-ons-http-interceptor-proxy.keda:8080/v1",
        host="llama.ml.svc.cluster.local",
        service_url="http://llama.ml.svc.cluster.local:8000/v1",
        served_model="llama",
        engine=EngineType.VLLM,
        tokenizer="meta-llama/Llama-3.1-8B-Instruct",
    )
    config = builders.runtime_config(OWNER, SPEC, POINTS[0], endpoint).to_wire()
    assert (config["targetUrl"], config["targetHost"], config["engineMetricsUrl"]) == (
        "http://keda-add-ons-http-interceptor-proxy.keda:8080",
        "llama.ml.svc.cluster.local",
        "http://llama.ml.svc.cluster.local:8000/metrics",
    )

    canary = endpoint_of(deployment, "canary")
    assert (canary.url, canary.host, canary.service_url) == (
        "http://llama-canary.ml.svc.cluster.local:8000/v1",
        None,
        None,
    ), "a track is measured through its own Service, which the add-on does not route"

    del deployment["status"]["interceptor"]
    config = builders.runtime_config(OWNER, SPEC, POINTS[0], endpoint_of(deployment)).to_wire()
    assert config["targetUrl"] == "http://llama.ml.svc.cluster.local:8000"
    assert "targetHost" not in config and "engineMetricsUrl" not in config


def test_a_triton_point_through_the_interceptor_leaves_the_metrics_port_to_the_user() -> None:
    endpoint = Endpoint(
        url="http://keda-add-ons-http-interceptor-proxy.keda:8080/v2",
        host="sw-llama-1.ml.svc.cluster.local",
        service_url="http://sw-llama-1.ml.svc.cluster.local:8000/v2",
        served_model="ensemble",
        engine=EngineType.TRITON_TRTLLM,
        tokenizer="meta-llama/Llama-3.1-8B-Instruct",
    )
    config = builders.runtime_config(OWNER, SPEC, POINTS[3], endpoint)
    assert config.target_url == "http://keda-add-ons-http-interceptor-proxy.keda:8080"
    assert config.target_host == "sw-llama-1.ml.svc.cluster.local" and config.engine_metrics_url is None
