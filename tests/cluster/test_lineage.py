"""Lineage against the real control plane with the operator running: a ModelDeployment that serves a
TrainingJob's output (``model.fromTrainingJob``) waits while the job trains, then serves its adapter
on the base model through vLLM's LoRA support; the TrainingJob's change wakes it (an index on
TrainingJobs, no polling: the operator's resync is an hour here).

Nothing runs in the kwok pods: the test stands in for the training runtime (it finishes the worker
pods, as a kubelet would report them) and the serving engine (kwok makes the server pods Ready).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack.controlplane.cluster import ControlPlane
from tests.cluster.conftest import OperatorProcess, running, wait_for_phase
from tests.cluster.drive import finish_workers, publish_progress, running_workers
from tests.cluster.test_modeldeployment_controller import (
    condition,
    engine_command,
    get_object,
    wait_md,
    wait_object,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def slow_resync_operator(
    crds: ControlPlane, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """An operator whose safety resync is an hour: every pass here is driven by a watch event."""
    log = tmp_path_factory.mktemp("operator-lineage") / "operator.log"
    with running(
        OperatorProcess(crds.kubeconfig, log, env={"MODELFLEET_RESYNC_SECONDS": "3600"}), api_client
    ) as p:
        yield p


def serving(name: str, *, training_job: str) -> dict[str, Any]:
    """A one-GPU ModelDeployment serving what ``training_job`` wrote."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"fromTrainingJob": {"name": training_job}},
            "resources": {"instanceType": "Standard_NC40adis_H100_v5", "gpusPerReplica": 1},
        },
    }


def test_a_deployment_waits_for_its_training_job_then_serves_the_adapter_on_its_base(
    cluster: ControlPlane,
    no_session_operator: None,
    slow_resync_operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tmp_path: Path,
) -> None:
    job = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": "sft"},
        "spec": {
            "model": {"uri": "meta-llama/Llama-3.1-8B"},
            "dataset": {"uri": "az://data/alpaca.jsonl"},
            "method": {"type": "lora"},
            "output": {"uri": "https://acct01.blob.core.windows.net/models/sft"},
            "resources": {"instanceType": "Standard_NC40adis_H100_v5", "nodes": 1, "gpusPerNode": 1},
        },
    }
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", serving("chat", training_job="sft")
    )
    waiting = wait_md(
        custom,
        namespace,
        "chat",
        lambda md: condition(md, "ModelReady").get("reason") == "TrainingJobNotFound",
        "ModelReady=False TrainingJobNotFound",
    )
    assert waiting["status"]["phase"] == "Pending"

    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)
    wait_md(
        custom,
        namespace,
        "chat",
        lambda md: condition(md, "ModelReady").get("reason") == "TrainingNotFinished",
        "ModelReady=False TrainingNotFinished, woken by the TrainingJob's creation",
    )
    running_workers(core, namespace, "sft", 1)
    publish_progress(core, namespace, "sft", step=50, total_steps=50, loss=1.2)
    assert get_object(cluster, "deployment", "chat-stable", namespace) is None, "nothing served meanwhile"

    finish_workers(core, namespace, "sft", succeeded=True)
    done = wait_for_phase(custom, namespace, "sft", "Succeeded")
    assert done["status"]["output"] == {
        "uri": "https://acct01.blob.core.windows.net/models/sft",
        "kind": "adapter",
        "baseModel": "meta-llama/Llama-3.1-8B",
        "step": 50,
    }

    served = wait_md(custom, namespace, "chat", lambda md: md.get("status", {}).get("model"), "status.model")
    assert served["status"]["model"] == {
        "uri": "meta-llama/Llama-3.1-8B",
        "kind": "adapter",
        "adapterUri": "https://acct01.blob.core.windows.net/models/sft",
        "trainingJob": {"name": "sft", "uid": done["metadata"]["uid"]},
        "source": "trainingjob/sft (adapter)",
    }
    assert condition(served, "ModelReady")["status"] == "True"
    program, flags = engine_command(
        wait_object(cluster, "configmap", "chat-stable-config", namespace), tmp_path
    )
    assert program == "vllm serve"
    assert flags[flags.index("--served-model-name") + 1] == "chat-base"
    assert flags[flags.index("--lora-modules") + 1].startswith("chat=")
    assert "--enable-lora" in flags
    wait_md(custom, namespace, "chat", lambda md: md.get("status", {}).get("phase") == "Ready", "Ready")
    row = cluster.kubectl("get", "md", "chat", "-n", namespace, "--no-headers").stdout.split()
    assert row[1:4] == ["vllm", "trainingjob/sft", "(adapter)"]


def test_the_tokenizer_example_trains_on_a_cpu_node_and_is_refused_as_a_model(
    cluster: ControlPlane,
    no_session_operator: None,
    slow_resync_operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    """The shipped tokenizer example, applied with kubectl, runs one CPU worker on the system pool's
    D-series node; once it succeeded its output is a tokenizer of no base model, and a deployment
    asking to serve it says so instead of starting an engine on it."""
    example = Path(__file__).resolve().parents[2] / "examples" / "trainingjob-tokenizer-cpu.yaml"
    cluster.kubectl("apply", "-n", namespace, "-f", str(example))
    name = "corpus-tokenizer"

    wait_for_phase(custom, namespace, name, "Running")
    [pod] = running_workers(core, namespace, name, 1)
    assert core.read_node(pod.spec.node_name).metadata.labels["kubernetes.azure.com/agentpool"] == "system"
    requests = pod.spec.containers[0].resources.requests
    assert requests["cpu"] == "7" and "nvidia.com/gpu" not in requests

    finish_workers(core, namespace, name, succeeded=True)
    done = wait_for_phase(custom, namespace, name, "Succeeded")
    assert done["status"]["output"] == {"uri": "az://models/tokenizers/corpus-bpe-32k", "kind": "tokenizer"}

    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", serving("tok", training_job=name)
    )
    refused = wait_md(
        custom,
        namespace,
        "tok",
        lambda md: condition(md, "ModelReady").get("reason") == "NotAModel",
        "ModelReady=False NotAModel",
    )
    message = condition(refused, "ModelReady")["message"]
    assert "trained a tokenizer (az://models/tokenizers/corpus-bpe-32k), not a model" in message
    assert get_object(cluster, "deployment", "tok-stable", namespace) is None, "no engine on a tokenizer"
