"""The objects a spec names that must exist (``common.references``) and the condition while one is missing."""

from __future__ import annotations

import pytest
from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import BenchmarkSweep
from modelfleet_api.modeldeployment import ModelDeployment
from modelfleet_api.trainingjob import TrainingJob
from modelfleet_operator.common.references import (
    Reference,
    references_condition,
    serving_references,
    sweep_references,
    training_references,
)

from tests.unit.test_api_models import good_benchmark_sweep, good_model_deployment, good_training_job

pytestmark = pytest.mark.unit


def test_training_job_needs_its_claims_and_priority_class() -> None:
    manifest = good_training_job()
    manifest["spec"] |= {
        "model": {"uri": "pvc://models/llama"},
        "dataset": {"uri": "pvc://models/data/train.jsonl"},
        "output": {"uri": "pvc://runs/llama"},
        "priorityClassName": "training-high",
    }
    assert training_references(TrainingJob.model_validate(manifest).spec) == [
        Reference(api_version="v1", kind="PersistentVolumeClaim", name="models", field="spec.model.uri"),
        Reference(api_version="v1", kind="PersistentVolumeClaim", name="runs", field="spec.output.uri"),
        Reference(
            api_version="scheduling.k8s.io/v1",
            kind="PriorityClass",
            name="training-high",
            field="spec.priorityClassName",
            namespaced=False,
        ),
    ]


def test_blob_and_hub_sources_need_nothing() -> None:
    assert training_references(TrainingJob.model_validate(good_training_job()).spec) == []


def test_model_deployment_needs_its_secret_cache_and_adapter_claims() -> None:
    manifest = good_model_deployment()
    manifest["spec"] |= {
        "apiKeySecret": {"name": "llama-key"},
        "modelCache": {"pvc": {"claimName": "cache"}},
        "engine": {
            "settings": {
                "tensorParallelSize": 2,
                "loraAdapters": [{"name": "sql", "uri": "pvc://adapters/sql"}],
            }
        },
    }
    assert [
        (r.kind, r.name, r.field) for r in serving_references(ModelDeployment.model_validate(manifest).spec)
    ] == [
        ("PersistentVolumeClaim", "adapters", "spec.engine.settings.loraAdapters[0].uri"),
        ("PersistentVolumeClaim", "cache", "spec.modelCache.pvc.claimName"),
        ("Secret", "llama-key", "spec.apiKeySecret.name"),
    ]


def test_sweep_needs_the_deployments_it_measures() -> None:
    refs = sweep_references(BenchmarkSweep.model_validate(good_benchmark_sweep()).spec)
    assert [(r.kind, r.name, r.field) for r in refs] == [
        ("ModelDeployment", "llama-8b", "spec.targets[0].deploymentRef")
    ]


def test_condition_names_every_missing_object_and_waits() -> None:
    secret = Reference(api_version="v1", kind="Secret", name="llama-key", field="spec.apiKeySecret.name")
    priority = Reference(
        api_version="scheduling.k8s.io/v1", kind="PriorityClass", name="high", field="spec.priorityClassName",
        namespaced=False,
    )  # fmt: skip
    assert references_condition([secret, priority], "team-a") == (
        "False",
        c.REASON_REFERENCE_MISSING,
        "Secret llama-key (spec.apiKeySecret.name) does not exist in namespace team-a; PriorityClass high "
        "(spec.priorityClassName) does not exist. Create them or change the spec; the resource waits and "
        "proceeds once everything it names exists.",
    )
    assert references_condition([], "team-a")[:2] == ("True", c.REASON_REFERENCES_FOUND)


def test_secrets_named_by_tokens_trackers_and_env_are_references_unless_optional() -> None:
    manifest = good_training_job()
    manifest["spec"] |= {
        "model": {"uri": "meta-llama/Llama-3.1-8B", "tokenSecret": {"name": "hf"}},
        "tracking": {"wandb": {"project": "p", "apiKeySecret": {"name": "wandb"}}},
        "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "needed", "key": "k"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "k", "optional": True}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}},
        ],
    }
    assert [
        (r.kind, r.name, r.field) for r in training_references(TrainingJob.model_validate(manifest).spec)
    ] == [
        ("Secret", "hf", "spec.model.tokenSecret.name"),
        ("Secret", "wandb", "spec.tracking.wandb.apiKeySecret.name"),
        ("Secret", "needed", "spec.env[0].valueFrom.secretKeyRef.name"),
    ]

    deployment = good_model_deployment()
    deployment["spec"] |= {
        "model": {"uri": "org/model", "tokenSecret": {"name": "hf"}},
        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "other"}}}],
    }
    assert [
        (r.kind, r.name, r.field) for r in serving_references(ModelDeployment.model_validate(deployment).spec)
    ] == [("Secret", "hf", "spec.model.tokenSecret.name")]


def test_the_claims_the_evaluation_reads_are_references_too() -> None:
    manifest = good_training_job()
    manifest["spec"]["evaluation"] = {
        "dataset": {"uri": "pvc://heldout/eval.jsonl"},
        "lmEval": {"tasks": ["my_task"], "tasksUri": "pvc://tasks/my_task.yaml"},
    }
    refs = training_references(TrainingJob.model_validate(manifest).spec)
    assert [(r.kind, r.name, r.field) for r in refs] == [
        ("PersistentVolumeClaim", "heldout", "spec.evaluation.dataset.uri"),
        ("PersistentVolumeClaim", "tasks", "spec.evaluation.lmEval.tasksUri"),
    ]
