"""DPO with LoRA adapters (the reference is the base with adapters off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.conftest import TinyAssets, run_training, runtime_config

pytestmark = pytest.mark.runtime


def test_dpo_prefers_chosen_responses_more_as_it_trains(tiny: TinyAssets, tmp_path: Path) -> None:
    config = runtime_config(
        tiny,
        tmp_path / "out",
        method={"type": "dpo", "dpo": {"beta": 0.5}, "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
        dataset={"uri": str(tiny.preferences), "format": "jsonl"},
    )
    config["hyperparameters"].update(maxSteps=10, learningRate=1e-2, lrSchedule="constant")
    config["topology"] = {"nodes": 1, "gpusPerNode": 1}  # the method is under test; DDP is elsewhere
    run_training(config, tmp_path, nproc=1)
    steps = [
        row
        for row in map(json.loads, (tmp_path / "out" / "training_metrics.jsonl").read_text().splitlines())
        if row["event"] == "step"
    ]
    assert steps[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference: -log sigmoid(0)
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"]
    assert steps[-1]["extra"]["reward_accuracy"] > steps[0]["extra"]["reward_accuracy"]
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
