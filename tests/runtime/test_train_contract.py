"""The operator-to-runtime contract, run locally: the worker pod the operator renders (command and
environment) and the ConfigMap it renders, executed as a pod would, with rank 0's progress reports
landing on a stand-in Kubernetes API (the `kube_api` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_api import contract
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJob
from modelfleet_operator.training import builders

from tests.runtime.conftest import VENV_BIN, KubeApi, TinyAssets, free_port, runtime_env, step_losses

pytestmark = pytest.mark.runtime

EXAMPLE = Path(__file__).parents[2] / "examples" / "trainingjob-cpu-tiny.yaml"
POD_NAME = "tiny-cpu-worker-0"


def pod_env(container: dict[str, Any], namespace: str) -> dict[str, str]:
    """The container's env as the kubelet would resolve it for worker 0."""
    field_values = {
        "metadata.name": POD_NAME,
        "metadata.namespace": namespace,
        builders.COMPLETION_INDEX_FIELD: "0",
    }
    env = {}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            env[variable["name"]] = field_values[variable["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


LAUNCHERS = {
    "torchrun": {"strategy": {"type": "ddp"}},
    # two processes on one worker: Accelerate's multi-process launcher, for real, on this CPU
    "accelerate": {
        "strategy": {"type": "ddp", "launcher": "accelerate"},
        "resources": {"instanceType": "Standard_NC80adis_H100_v5", "nodes": 1, "gpusPerNode": 2},
    },
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_operator_rendered_worker_trains_and_reports_progress(
    launcher: str, tiny: TinyAssets, tmp_path: Path, kube_api: KubeApi
) -> None:
    kubeconfig, patches = kube_api.kubeconfig, kube_api.patches
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"].update(namespace="ml", uid="5f1c-uid")
    spec = manifest["spec"]
    spec.update(LAUNCHERS[launcher])
    spec["model"]["uri"], spec["dataset"]["uri"] = str(tiny.model), str(tiny.instructions)
    spec["checkpoint"]["uri"], spec["output"]["uri"] = str(tmp_path / "ckpt"), str(tmp_path / "out")
    job = TrainingJob.model_validate(manifest)
    owner = builders.Owner.of(job)

    etc = tmp_path / "etc"
    etc.mkdir()
    for name, text in builders.config_map(owner, job.spec)["data"].items():
        (etc / name).write_text(text)
    worker = builders.worker_job(owner, job.spec, image="unused", attempt=1)
    container = worker["spec"]["template"]["spec"]["containers"][0]

    laptop = runtime_env(tmp_path)
    env = laptop | pod_env(container, "ml")
    # what differs on a laptop: the mount paths, the rendezvous host and free ports, the API server
    master_port = str(free_port())
    env.update(
        {
            **{name: laptop[name] for name in (contract.ENV_CACHE_DIR, contract.ENV_HF_HOME)},
            contract.ENV_TORCH_EXTENSIONS_DIR: laptop[contract.ENV_TORCH_EXTENSIONS_DIR],
            contract.ENV_TERMINATION_LOG: str(tmp_path / "termination-log"),
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            contract.ENV_CONFIG: str(etc / contract.CONFIG_FILE),
            contract.ENV_MASTER_ADDR: "127.0.0.1",
            contract.ENV_MASTER_PORT: master_port,
            contract.ENV_METRICS_PORT: str(free_port()),
            "KUBECONFIG": str(kubeconfig),
        }
    )
    accelerate_file = etc / contract.ACCELERATE_CONFIG_FILE
    if accelerate_file.exists():
        rendered = yaml.safe_load(accelerate_file.read_text())
        assert rendered["main_process_ip"] == f"{owner.name}-0.{owner.name}.ml.svc"
        accelerate_file.write_text(
            yaml.safe_dump(rendered | {"main_process_ip": "127.0.0.1", "main_process_port": int(master_port)})
        )
    # the kubelet's $(VAR) substitution from the container's environment, and the mount path
    command = [
        env.get(arg[2:-1], arg) if arg.startswith("$(") else arg.replace(contract.CONFIG_DIR, str(etc))
        for arg in container["command"]
    ]
    command[0] = str(VENV_BIN / command[0])
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr  # the supervisor passes the launcher's output on as its stdout
    assert result.returncode == 0, output[-5000:]
    assert "restart attempt 1" in output
    # the supervisor saved the pod's whole log beside the checkpoints, and wrote no termination message
    saved = (tmp_path / "ckpt" / "logs" / "attempt-1" / f"{POD_NAME}.log").read_text()
    assert "restart attempt 1" in saved and "step 20/20" in saved
    assert not (tmp_path / "termination-log").exists()
    processes = job.spec.resources.nodes * int(env[contract.ENV_NPROC_PER_NODE])
    assert f"rank 0 of {processes}" in output, output[-3000:]

    losses = step_losses(tmp_path / "out")
    assert sum(losses[s] for s in range(16, 21)) < sum(losses[s] for s in range(1, 6)), losses
    adapter = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny.model), tmp_path / "out")
    assert any("lora_B" in name and parameter.abs().sum() > 0 for name, parameter in tuned.named_parameters())
    assert (tmp_path / "ckpt" / "latest").read_text() == "20"

    assert patches, "rank 0 sent no progress"
    paths = {path for path, _ in patches}
    assert paths == {
        f"/api/v1/namespaces/ml/configmaps/{pod_env(container, 'ml')[contract.ENV_PROGRESS_CONFIGMAP]}"
    }
    final = TrainingProgress.model_validate_json(patches[-1][1]["data"][contract.PROGRESS_KEY])
    assert final.step == final.total_steps == 20
    assert final.last_checkpoint == str(tmp_path / "ckpt" / "step-00000020")
    assert final.loss is not None and final.tokens_per_second
    # what the operator sizes the next attempt's grace period from
    assert final.step_seconds is not None and final.step_seconds > 0
    assert final.checkpoint_seconds is not None and final.checkpoint_seconds > 0
