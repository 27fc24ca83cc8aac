"""The worker settings the training runtime's additions need from the operator's pure builders:
tracker API keys from Secrets (compared with the whole env list a user gets), the launcher command and
the Accelerate config it reads."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.training import builders

from tests.unit.test_trainingjob_builders import OWNER, expected_env, spec

pytestmark = pytest.mark.unit


def worker_env(job_spec: TrainingJobSpec) -> list[dict[str, Any]]:
    job = builders.worker_job(OWNER, job_spec, image="img", attempt=0)
    env: list[dict[str, Any]] = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_tracker_api_keys_come_from_the_named_secrets_before_the_users_env() -> None:
    tracking = {
        "wandb": {"project": "llm", "apiKeySecret": {"name": "wandb", "key": "token"}},
        "comet": {"project": "llm", "workspace": "ml-team", "apiKeySecret": {"name": "comet"}},
    }
    env = worker_env(spec(tracking=tracking, env=[{"name": "NCCL_DEBUG", "value": "INFO"}]))
    assert env == [
        *expected_env(nnodes="1", nproc="1", attempt="0", shutdown="66"),
        {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "token"}}},
        {"name": "COMET_API_KEY", "valueFrom": {"secretKeyRef": {"name": "comet", "key": "api-key"}}},
        {"name": "NCCL_DEBUG", "value": "INFO"},
    ]


def test_offline_trackers_need_no_secret_and_get_none() -> None:
    tracking = {
        "wandb": {"project": "llm", "mode": "offline"},
        "comet": {"project": "llm", "mode": "offline"},
    }
    assert worker_env(spec(tracking=tracking)) == expected_env(
        nnodes="1", nproc="1", attempt="0", shutdown="66"
    )


SUPERVISED = ["python", "-m", "modelfleet_train.supervise", "--"]
"""The runtime's supervisor runs the launcher (it saves the pod's log and writes its termination message)."""


def test_torchrun_is_the_default_launcher_and_reads_its_flags_from_pet_variables() -> None:
    job = builders.worker_job(OWNER, spec(), image="img", attempt=0)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        *SUPERVISED,
        "torchrun",
        "-m",
        "modelfleet_train",
        "--config",
        "/etc/modelfleet/config.yaml",
    ]
    assert set(builders.config_map(OWNER, spec())["data"]) == {"config.yaml"}


def test_accelerate_launch_gets_a_rendered_config_and_the_pods_node_rank() -> None:
    job_spec = spec(
        strategy={"type": "fsdp", "launcher": "accelerate"},
        resources={"nodes": 4, "gpusPerNode": 8, "instanceType": "Standard_ND96isr_H100_v5"},
    )
    container = builders.worker_job(OWNER, job_spec, image="img", attempt=0)["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["command"] == [
        *SUPERVISED,
        "accelerate",
        "launch",
        "--config_file",
        "/etc/modelfleet/accelerate.yaml",
        "--machine_rank",
        "$(PET_NODE_RANK)",  # the kubelet substitutes the pod's completion index from its env
        "-m",
        "modelfleet_train",
        "--config",
        "/etc/modelfleet/config.yaml",
    ]
    assert any(e["name"] == "PET_NODE_RANK" for e in container["env"])
    data = builders.config_map(OWNER, job_spec)["data"]
    assert yaml.safe_load(data["accelerate.yaml"]) == {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "MULTI_GPU",
        "num_machines": 4,
        "num_processes": 32,
        "machine_rank": 0,
        "main_process_ip": "lora-0.lora.ml.svc",
        "main_process_port": 29500,
        "rdzv_backend": "static",
        "same_network": True,
        "mixed_precision": "bf16",
        "gpu_ids": "all",
        "use_cpu": False,
        "downcast_bf16": "no",
        "debug": False,
    }
    assert yaml.safe_load(data["config.yaml"])["strategy"]["launcher"] == "accelerate"


def test_accelerate_config_on_a_cpu_size_starts_one_process_per_node() -> None:
    job_spec = spec(
        strategy={"type": "ddp", "launcher": "accelerate"},
        resources={"nodes": 2, "gpusPerNode": 0, "instanceType": "Standard_D8s_v5"},
    )
    config = builders.accelerate_config(OWNER, job_spec)
    assert (config["num_machines"], config["num_processes"], config["distributed_type"]) == (
        2,
        2,
        "MULTI_GPU",
    )


def test_accelerate_config_for_one_process_and_fp32_is_not_distributed() -> None:
    config = builders.accelerate_config(
        OWNER, spec(strategy={"type": "ddp", "launcher": "accelerate"}, precision="fp32")
    )
    assert (config["distributed_type"], config["num_processes"], config["mixed_precision"]) == ("NO", 1, "no")
