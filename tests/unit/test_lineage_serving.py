"""ModelDeployment passes over an in-memory API whose tracks serve a TrainingJob's output
(``model.fromTrainingJob``): the deployment waits (ModelReady=False) while the job is missing, running
or failed, then serves a full model as the model and an adapter on its base model through the engine's
LoRA support, records what it resolved (with the job's UID), keeps serving it when the job goes, and
lets the canary follow a newer job than the stable track."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from modelfleet_api import constants as c
from modelfleet_api.serving import EngineType
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.serving.reconcile import ModelDeploymentController

from tests.unit.fake_kube import FakeKube, Harness

pytestmark = pytest.mark.unit

NS = "team-a"
NOW = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)


def make(kube: FakeKube, **spec: Any) -> Harness:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "chat", "namespace": NS, "uid": "md-uid", "generation": 1},
        "spec": {"model": {"fromTrainingJob": {"name": "sft"}}, **spec},
    }
    controller = ModelDeploymentController(
        OperatorConfig(serving_images=dict.fromkeys(EngineType, "serve:1"))
    )
    return Harness(kube, controller, body, lambda: NOW, capacity=None)


def job(kube: FakeKube, name: str = "sft", uid: str = "job-uid-1", **status: Any) -> dict[str, Any]:
    found = kube.get("TrainingJob", NS, name)
    body = found or kube.add(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": NS, "uid": uid},
            "spec": {},
        }
    )
    body["metadata"]["uid"] = uid
    body["status"] = status
    return body


def succeeded(kube: FakeKube, name: str = "sft", uid: str = "job-uid-1", **output: Any) -> None:
    job(
        kube,
        name,
        uid,
        phase="Succeeded",
        output={"uri": f"pvc://work/{name}", "kind": "model", "baseModel": "org/base", **output},
    )


def runtime_config(kube: FakeKube, track: str = "stable") -> dict[str, Any]:
    config_map = kube.get("ConfigMap", NS, f"chat-{track}-config")
    assert config_map is not None, f"no {track} track"
    loaded: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return loaded


def test_the_deployment_waits_for_its_training_job_and_deploys_nothing_meanwhile() -> None:
    kube = FakeKube()
    md = make(kube)

    md.reconcile()
    assert md.conditions()[c.COND_MODEL_READY] == ("False", c.REASON_TRAINING_JOB_NOT_FOUND)
    assert (md.status["phase"], kube.applies) == ("Pending", [])

    job(kube, phase="Running", steps="40/100")
    md.reconcile()
    assert md.conditions()[c.COND_MODEL_READY] == ("False", c.REASON_TRAINING_NOT_FINISHED)
    ready = next(x for x in md.status["conditions"] if x["type"] == c.COND_MODEL_READY)
    assert ready["message"] == (
        "stable: TrainingJob sft is Running at step 40/100; the track is created when it has Succeeded."
    )
    assert kube.applies == []

    job(
        kube,
        phase="Failed",
        conditions=[{"type": "Failed", "reason": "BackoffLimitExceeded", "message": "x"}],
    )
    md.reconcile()
    assert md.conditions()[c.COND_MODEL_READY] == ("False", c.REASON_TRAINING_FAILED)
    assert ("Warning", c.REASON_TRAINING_FAILED) in md.events
    assert kube.applies == []


def test_a_full_model_is_served_as_the_model_and_recorded_with_the_jobs_uid() -> None:
    kube = FakeKube()
    succeeded(kube)
    md = make(kube)

    md.reconcile()

    assert runtime_config(kube) == {
        "model": {"uri": "pvc://work/sft", "loadIn4bit": False, "trustRemoteCode": False},
        "servedModelName": "chat",
        "engine": runtime_config(kube)["engine"],
        "port": 8000,
        "host": "0.0.0.0",
        "metricsPort": 9090,
        "cacheDir": "/models",
    }
    assert md.status["model"] == {
        "uri": "pvc://work/sft",
        "kind": "model",
        "trainingJob": {"name": "sft", "uid": "job-uid-1"},
        "source": "trainingjob/sft",
    }
    assert md.conditions()[c.COND_MODEL_READY] == ("True", c.REASON_MODEL_RESOLVED)


def test_an_adapter_is_served_on_its_base_model_under_the_served_name() -> None:
    kube = FakeKube()
    succeeded(kube, kind="adapter", baseModel="org/base", baseModelRevision="v2")
    md = make(kube, servedModelName="assistant")

    md.reconcile()

    config = runtime_config(kube)
    assert config["model"] == {
        "uri": "org/base",
        "revision": "v2",
        "loadIn4bit": False,
        "trustRemoteCode": False,
    }
    assert config["servedModelName"] == "assistant-base"
    assert config["engine"]["settings"]["loraAdapters"] == [{"name": "assistant", "uri": "pvc://work/sft"}]
    assert md.status["servedModel"] == "assistant", "clients ask for the trained adapter by the served name"
    assert md.status["model"] == {
        "uri": "org/base",
        "revision": "v2",
        "kind": "adapter",
        "adapterUri": "pvc://work/sft",
        "trainingJob": {"name": "sft", "uid": "job-uid-1"},
        "source": "trainingjob/sft (adapter)",
    }


def test_an_adapter_the_engine_cannot_serve_waits_unless_the_job_merged_it() -> None:
    kube = FakeKube()
    succeeded(kube, kind="adapter")
    md = make(
        kube,
        engine={"type": "transformers"},
        resources={"instanceType": "Standard_D8s_v5", "gpusPerReplica": 0},
    )

    md.reconcile()
    assert md.conditions()[c.COND_MODEL_READY] == ("False", c.REASON_ADAPTER_NOT_SUPPORTED)
    assert kube.applies == []

    succeeded(kube, kind="adapter", mergedUri="pvc://work/sft/merged")
    md.reconcile()
    assert runtime_config(kube)["model"]["uri"] == "pvc://work/sft/merged"
    assert md.status["model"]["source"] == "trainingjob/sft (merged)"


def test_a_tokenizer_is_not_served() -> None:
    kube = FakeKube()
    job(kube, phase="Succeeded", output={"uri": "pvc://work/tok", "kind": "tokenizer"})
    md = make(kube)

    md.reconcile()

    assert md.conditions()[c.COND_MODEL_READY] == ("False", c.REASON_NOT_A_MODEL)
    ready = next(x for x in md.status["conditions"] if x["type"] == c.COND_MODEL_READY)
    assert "trained a tokenizer (pvc://work/tok), not a model" in ready["message"]
    assert kube.applies == []


def test_a_job_run_again_keeps_the_recorded_output_served_until_it_succeeds() -> None:
    kube = FakeKube()
    succeeded(kube)
    md = make(kube)
    md.reconcile()

    job(kube, uid="job-uid-2", phase="Running")
    md.reconcile()
    assert runtime_config(kube)["model"]["uri"] == "pvc://work/sft"
    assert md.status["model"]["trainingJob"]["uid"] == "job-uid-1"
    assert md.conditions()[c.COND_MODEL_READY][0] == "True"

    kube.objects.pop(("TrainingJob", NS, "sft"))
    md.reconcile()
    assert md.status["model"]["trainingJob"]["uid"] == "job-uid-1", "a deleted job takes nothing away"

    succeeded(kube, uid="job-uid-3", uri="pvc://work/sft-v3")
    md.reconcile()
    assert runtime_config(kube)["model"]["uri"] == "pvc://work/sft-v3"
    assert md.status["model"]["trainingJob"]["uid"] == "job-uid-3"


def test_the_canary_follows_a_newer_job_and_waits_alone() -> None:
    kube = FakeKube()
    succeeded(kube)
    job(kube, "sft-v2", uid="job-uid-9", phase="Running")
    md = make(kube, canary={"model": {"fromTrainingJob": {"name": "sft-v2"}}, "weight": 25})

    md.reconcile()
    assert ("Deployment", "chat-stable") in kube.applies
    assert kube.get("Deployment", NS, "chat-canary") is None
    assert md.conditions()[c.COND_MODEL_READY] == ("False", c.REASON_TRAINING_NOT_FINISHED)
    assert "canary" not in md.status

    succeeded(kube, "sft-v2", uid="job-uid-9")
    md.reconcile()
    assert runtime_config(kube, "canary")["model"]["uri"] == "pvc://work/sft-v2"
    assert md.status["canary"]["model"]["trainingJob"] == {"name": "sft-v2", "uid": "job-uid-9"}
    assert md.status["model"]["trainingJob"] == {"name": "sft", "uid": "job-uid-1"}


def test_deployments_are_woken_by_the_training_jobs_their_tracks_serve() -> None:
    from modelfleet_operator.common.handlers import deployments_serving
    from modelfleet_operator.common.indexes import DEPLOYMENTS_BY_TRAINING_JOB, training_jobs_named

    spec = {
        "model": {"fromTrainingJob": {"name": "sft"}},
        "canary": {"model": {"fromTrainingJob": {"name": "v2"}}},
    }
    assert training_jobs_named(spec) == ["sft", "v2"]
    assert training_jobs_named({"model": {"uri": "org/model"}, "canary": {"image": "x"}}) == []
    index = {(NS, "v2"): ["chat", "chat-b"]}
    body: Any = {"metadata": {"name": "v2"}}
    assert deployments_serving(body, {}, NS, {DEPLOYMENTS_BY_TRAINING_JOB: index}) == [
        ("ModelDeployment", NS, "chat"),
        ("ModelDeployment", NS, "chat-b"),
    ]
    assert (
        deployments_serving({"metadata": {"name": "other"}}, {}, NS, {DEPLOYMENTS_BY_TRAINING_JOB: index})
        == []
    )
