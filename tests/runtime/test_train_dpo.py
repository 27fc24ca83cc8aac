"""DPO with LoRA adapters (the reference is the base with adapters off), one rank of the runtime's
Trainer in the session's shared one-rank launch (tests.runtime.shared_launches)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.conftest import TinyAssets, runtime_config
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime


@shared_case(nproc=1)  # the method is under test; DDP is elsewhere
def dpo_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    tiny: TinyAssets = request.getfixturevalue("tiny")
    config = runtime_config(
        tiny,
        directory / "out",
        method={"type": "dpo", "dpo": {"beta": 0.5}, "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
        dataset={"uri": str(tiny.preferences), "format": "jsonl"},
    )
    config["hyperparameters"].update(maxSteps=10, learningRate=1e-2, lrSchedule="constant")
    config["topology"] = {"nodes": 1, "gpusPerNode": 1}
    return Case(directory, [Run("train", config)])


def test_dpo_prefers_chosen_responses_more_as_it_trains(shared_trainer_runs: SharedLaunches) -> None:
    case = shared_trainer_runs.case(dpo_case)
    case.check()
    output = case.directory / "out"
    steps = [
        row
        for row in map(json.loads, (output / "training_metrics.jsonl").read_text().splitlines())
        if row["event"] == "step"
    ]
    assert steps[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference: -log sigmoid(0)
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"]
    assert steps[-1]["extra"]["reward_accuracy"] > steps[0]["extra"]["reward_accuracy"]
    assert (output / "adapter_model.safetensors").exists()
