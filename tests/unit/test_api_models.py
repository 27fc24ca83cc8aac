"""The pydantic API types accept well-formed manifests and reject malformed ones with the field named.

The good manifests here are also applied to the real API server by ``tests/cluster/test_crd_*.py``,
so the Python models and the CRDs are checked against the same inputs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_api import instance_types
from modelfleet_api.benchmarksweep import BenchmarkSweep
from modelfleet_api.modeldeployment import ModelDeployment
from modelfleet_api.resource import CustomResource
from modelfleet_api.trainingjob import TrainingJob
from pydantic import ValidationError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def good_training_job(name: str = "llama-lora") -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "meta-llama/Llama-3.1-8B"},
            "dataset": {"uri": "az://data/alpaca.jsonl"},
            "method": {"type": "lora", "lora": {"r": 16, "alpha": 32}},
            "strategy": {"type": "deepspeed", "zeroStage": 2, "deepspeedConfig": {"zero_optimization": {}}},
            "hyperparameters": {"maxSteps": 1000, "warmupSteps": 50},
            "resources": {"nodes": 2, "gpusPerNode": 8, "instanceType": "Standard_ND96isr_H100_v5"},
            "output": {"uri": "az://models/llama-lora"},
            "env": [{"name": "NCCL_DEBUG", "value": "INFO"}],
        },
    }


def good_model_deployment(name: str = "llama-8b") -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
            "engine": {"type": "vllm", "settings": {"tensorParallelSize": 2, "quantization": "fp8"}},
            "resources": {"gpusPerReplica": 2, "instanceType": "Standard_NC80adis_H100_v5", "spot": True},
            "autoscaling": {"minReplicas": 0, "maxReplicas": 4, "metric": "queueDepth", "target": 8},
            "canary": {"model": {"uri": "meta-llama/Llama-3.1-8B-Instruct", "revision": "v2"}, "weight": 20},
            "modelCache": {"emptyDir": {"sizeLimit": "100Gi"}},
        },
    }


def good_benchmark_sweep(name: str = "engines") -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "BenchmarkSweep",
        "metadata": {"name": name},
        "spec": {
            "targets": [
                {"name": "current", "deploymentRef": "llama-8b"},
                {
                    "name": "grid",
                    "template": {
                        "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
                        "resources": {"gpusPerReplica": 2, "instanceType": "Standard_NC80adis_H100_v5"},
                    },
                    "axes": {"engine": ["vllm", "sglang"], "tensorParallelSize": [1, 2]},
                },
            ],
            "workload": {
                "synthetic": {"inputTokens": {"mean": 512}, "outputTokens": {"mean": 128}},
            },
            "load": {"mode": "closed-loop", "concurrency": [1, 8, 32], "requests": 200, "warmupRequests": 10},
            "tokenLengths": [{"inputTokens": 1024, "outputTokens": 256}],
            "slos": {"ttftP95Ms": 500, "tpotP95Ms": 50},
            "sinks": {"configMap": True, "pushgateway": {"url": "http://pushgateway.monitoring:9091"}},
        },
    }


GOOD: list[tuple[type[CustomResource], dict[str, Any]]] = [
    (TrainingJob, good_training_job()),
    (ModelDeployment, good_model_deployment()),
    (BenchmarkSweep, good_benchmark_sweep()),
]


@pytest.mark.parametrize(("kind", "manifest"), GOOD, ids=lambda v: getattr(v, "__name__", ""))
def test_good_manifest_round_trips(kind: type[CustomResource], manifest: dict[str, Any]) -> None:
    parsed = kind.model_validate(manifest)
    assert kind.model_validate(parsed.to_wire()) == parsed


def test_defaults_fill_a_minimal_training_job() -> None:
    job = TrainingJob.model_validate(
        {
            "kind": "TrainingJob",
            "spec": {"model": {"uri": "m"}, "dataset": {"uri": "d"}, "output": {"uri": "pvc://runs/o"}},
        }
    )
    assert (job.spec.resources.nodes, job.spec.resources.gpus_per_node) == (1, 1)
    assert job.spec.resources.instance_type is instance_types.InstanceType.NC40ADIS_H100_V5
    assert job.spec.strategy.type == "deepspeed"
    assert job.spec.backoff_limit == 3


def _with(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``manifest`` with the dotted ``path`` set to ``value``."""
    out = copy.deepcopy(manifest)
    node = out
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return out


BAD: list[tuple[type[CustomResource], dict[str, Any], str]] = [
    (TrainingJob, _with(good_training_job(), "spec.precision", "fp8"), r"spec\.precision\s"),
    (
        TrainingJob,
        _with(good_training_job(), "spec.resources.gpusPerNode", -1),
        r"spec\.resources\.gpusPerNode\s",
    ),
    (
        TrainingJob,
        _with(good_training_job(), "spec.resources.instanceType", "Standard_B2s"),
        r"resources\.instanceType\s",
    ),
    (TrainingJob, _with(good_training_job(), "spec.strategy.zeroStage", 4), r"strategy\.zeroStage\s"),
    (TrainingJob, _with(good_training_job(), "spec.resources.gpu", 1), r"resources\.gpu\s+Extra inputs"),
    (TrainingJob, _with(good_training_job(), "kind", "ModelDeployment"), r"kind\s"),
    (ModelDeployment, _with(good_model_deployment(), "spec.engine.type", "llamacpp"), r"engine\.type\s"),
    (ModelDeployment, _with(good_model_deployment(), "spec.canary.weight", 150), r"canary\.weight\s"),
    (
        ModelDeployment,
        _with(good_model_deployment(), "spec.autoscaling.metric", "gpuUtilization"),
        r"autoscaling\.metric\s",
    ),
    (
        ModelDeployment,
        _with(
            good_model_deployment(), "spec.engine", {"type": "lmdeploy", "settings": {"quantization": "fp8"}}
        ),
        r"settings\.quantization: lmdeploy does not support fp8",
    ),
    (BenchmarkSweep, _with(good_benchmark_sweep(), "spec.targets", []), r"spec\.targets\s"),
    (BenchmarkSweep, _with(good_benchmark_sweep(), "spec.load.concurrency", [0]), r"load\.concurrency\.0\s"),
    (
        BenchmarkSweep,
        _with(good_benchmark_sweep(), "spec.maxParallelPoints", 0),
        r"spec\.maxParallelPoints\s",
    ),
]


@pytest.mark.parametrize(
    ("kind", "manifest", "location"), BAD, ids=[f"{k.__name__}-{i}" for i, (k, _, _) in enumerate(BAD)]
)
def test_bad_manifest_is_rejected_naming_the_field(
    kind: type[CustomResource], manifest: dict[str, Any], location: str
) -> None:
    with pytest.raises(ValidationError, match=location):
        kind.model_validate(manifest)


def example_manifests() -> list[tuple[Path, dict[str, Any]]]:
    kinds = {k.names.kind for k, _ in GOOD}
    found = []
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, dict)
                and doc.get("kind") in kinds
                and doc.get("apiVersion", "").startswith("modelfleet.io/")
            ):
                found.append((path, doc))
    return found


@pytest.mark.parametrize(
    ("path", "manifest"), example_manifests(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_examples_validate(path: Path, manifest: dict[str, Any]) -> None:
    kind = {k.names.kind: k for k, _ in GOOD}[manifest["kind"]]
    kind.model_validate(manifest)
