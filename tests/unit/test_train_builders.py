"""The worker settings the training runtime's additions need from the operator's pure builders:
tracker API keys from Secrets (compared with the whole env list a user gets)."""

from __future__ import annotations

from typing import Any

import pytest
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
        *expected_env(nnodes="1", nproc="1", attempt="0"),
        {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "token"}}},
        {"name": "COMET_API_KEY", "valueFrom": {"secretKeyRef": {"name": "comet", "key": "api-key"}}},
        {"name": "NCCL_DEBUG", "value": "INFO"},
    ]


def test_offline_trackers_need_no_secret_and_get_none() -> None:
    tracking = {
        "wandb": {"project": "llm", "mode": "offline"},
        "comet": {"project": "llm", "mode": "offline"},
    }
    assert worker_env(spec(tracking=tracking)) == expected_env(nnodes="1", nproc="1", attempt="0")
