"""Trackers never stop training: one that cannot start is dropped with a log line, one that fails
while logging is skipped; the run key is stable across attempts and distinct across jobs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_train.tracking import (
    EVAL_SECTION,
    RunStatus,
    Trackers,
    flatten,
    run_key,
    section_name,
    tracked_params,
)

pytestmark = pytest.mark.unit


def config(tracking: dict[str, Any], uid: str = "uid-1") -> TrainingRuntimeConfig:
    return TrainingRuntimeConfig.model_validate(
        {
            "job": {"name": "demo", "namespace": "team-a", "uid": uid},
            "model": {"uri": "/models/llama"},
            "dataset": {"uri": "/data/train.jsonl"},
            "output": {"uri": "/out"},
            "tracking": tracking,
            "topology": {"nodes": 1, "gpusPerNode": 1},
        }
    )


@pytest.mark.parametrize(("tracker", "variable"), [("wandb", "WANDB_API_KEY"), ("comet", "COMET_API_KEY")])
def test_an_online_tracker_without_its_api_key_is_dropped_and_training_goes_on(
    tracker: str,
    variable: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv(variable, raising=False)
    with caplog.at_level(logging.ERROR, logger="modelfleet_train.tracking"):
        trackers = Trackers.start(
            config({tracker: {"project": "llm", "apiKeySecret": {"name": "s"}}}), tmp_path
        )
    assert trackers.trackers == []
    assert f"{tracker} tracking disabled (training continues)" in caplog.text
    assert f"tracking.{tracker}.apiKeySecret: {variable} is not set" in caplog.text
    trackers.log_step(1, {"loss": 1.0})
    trackers.close(RunStatus.FINISHED)
    assert trackers.offline_dirs() == []


class Failing:
    name = "flaky"

    def __init__(self) -> None:
        self.closed: list[str] = []

    def log_step(self, step: int, values: dict[str, float], section: str = "train") -> None:
        raise ConnectionError("tracking server unreachable")

    def close(self, status: str) -> None:
        self.closed.append(status)
        raise ConnectionError("tracking server unreachable")


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.sections: list[str] = []
        self.closed: list[str] = []

    def log_step(self, step: int, values: dict[str, float], section: str = "train") -> None:
        self.steps.append((step, values))
        self.sections.append(section)

    def close(self, status: str) -> None:
        self.closed.append(status)


def test_a_failing_tracker_does_not_keep_the_others_or_the_loop_from_their_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing, recording = Failing(), Recording()
    trackers = Trackers([failing, recording])
    trackers.log_step(3, {"loss": 0.5, "mfu": None})
    trackers.close(RunStatus.KILLED)
    assert recording.steps == [(3, {"loss": 0.5})]  # unknown values are left out, not logged as None
    assert failing.closed == recording.closed == [RunStatus.KILLED]
    assert "flaky logging failed: tracking server unreachable" in caplog.text
    assert "ending the flaky run failed" in caplog.text


def test_held_out_figures_go_to_every_tracker_under_the_eval_section() -> None:
    recording = Recording()
    trackers = Trackers([recording])
    trackers.log_step(4, {"loss": 1.5, "perplexity": 4.48, "accuracy": None}, section=EVAL_SECTION)
    assert recording.steps == [(4, {"loss": 1.5, "perplexity": 4.48})]
    assert recording.sections == [EVAL_SECTION]
    assert section_name(EVAL_SECTION, "loss") == "eval_loss"
    assert section_name("train", "loss") == "loss"


def test_run_key_is_the_same_for_every_attempt_and_differs_for_a_recreated_job() -> None:
    first = run_key(config({}, uid="uid-1"))
    assert first == run_key(config({}, uid="uid-1"))
    assert first != run_key(config({}, uid="uid-2"))
    assert len(first) == 32 and first.isalnum()


def test_parameters_are_the_config_without_identity_and_tracking() -> None:
    params = flatten(tracked_params(config({"mlflowUri": "http://mlflow:5000"})))
    assert params["method.type"] == "lora" and params["hyperparameters.learningRate"] == 2e-4
    assert not any(key.startswith(("job.", "tracking.")) for key in params)
