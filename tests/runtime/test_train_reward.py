"""Reward models (method `reward`): a one-score head trained on preference pairs with the Bradley-Terry
loss, written so that `AutoModelForSequenceClassification` reads it back and ranks the pairs. Each run is
the runtime's Trainer in the session's shared launch of its world size (tests.runtime.shared_launches)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.runtime.conftest import TinyAssets, runtime_config
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime


def metrics(output: Path, event: str) -> list[dict[str, Any]]:
    lines = (output / "training_metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["event"] == event]


def scores(model_dir: Path, rows: list[dict[str, str]]) -> tuple[list[float], list[float]]:
    """The saved reward model's scores of each pair's chosen and rejected answer, as a user computes them:
    the prompt and answer tokenized the way training did, one pair at a time."""
    from modelfleet_train.data import preference
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    assert model.config.num_labels == 1
    chosen, rejected = [], []
    with torch.no_grad():
        for row in rows:
            pair = preference(tokenizer, row["prompt"], row["chosen"], row["rejected"], 64)
            for side, out in (("chosen", chosen), ("rejected", rejected)):
                ids = torch.tensor([pair[f"{side}_input_ids"]])
                out.append(model(input_ids=ids).logits[0, 0].item())
    return chosen, rejected


def assert_every_pair_ranked_chosen_first(model_dir: Path, tiny: TinyAssets) -> None:
    rows = [json.loads(line) for line in tiny.preferences.read_text().splitlines()]
    chosen, rejected = scores(model_dir, rows)
    ranked = sum(c > r for c, r in zip(chosen, rejected, strict=True))
    assert ranked == len(chosen), f"{ranked}/{len(chosen)} pairs ranked chosen first"


def reward_config(
    tiny: TinyAssets, output: Path, method: dict[str, Any], learning_rate: float
) -> dict[str, Any]:
    """Twelve steps on the tiny preference pairs at a constant learning rate."""
    config = runtime_config(
        tiny, output, method=method, dataset={"uri": str(tiny.preferences), "format": "jsonl"}
    )
    config["hyperparameters"].update(
        maxSteps=12, learningRate=learning_rate, lrSchedule="constant", sequenceLength=64
    )
    return config


@shared_case(nproc=2)
def full_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    tiny = request.getfixturevalue("tiny")
    config = reward_config(tiny, directory / "out", {"type": "reward"}, learning_rate=1e-3)
    config["evaluation"] = {"holdoutFraction": 0.125, "intervalSteps": 6}
    return Case(directory, [Run("train", config)])


@shared_case(nproc=1)
def lora_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    lora = {"r": 8, "alpha": 16, "dropout": 0.0}
    tiny = request.getfixturevalue("tiny")
    config = reward_config(tiny, directory / "out", {"type": "reward", "lora": lora}, learning_rate=1e-2)
    config["output"]["mergeAdapter"] = True
    config["topology"] = {"nodes": 1, "gpusPerNode": 1}
    return Case(directory, [Run("train", config)])


def test_a_reward_model_learns_to_rank_chosen_answers_first_and_is_saved_with_its_score_head(
    tiny: TinyAssets, shared_trainer_runs: SharedLaunches
) -> None:
    """Two DDP ranks, full weights, a held-out eighth of the pairs."""
    case = shared_trainer_runs.case(full_case)
    case.check()
    output = case.directory / "out"

    steps = metrics(output, "step")
    first, last = steps[0], steps[-1]
    # a new score head (small seeded weights) scores both answers alike: -log sigmoid(~0) = log 2
    assert first["loss"] == pytest.approx(math.log(2), abs=0.05)
    assert last["loss"] < 0.1 * first["loss"], [s["loss"] for s in steps]
    assert last["extra"]["reward_accuracy"] == 1.0
    assert last["extra"]["reward_margin"] > 10 * first["extra"]["reward_margin"] > 0
    evaluations = metrics(output, "eval")
    assert [e["step"] for e in evaluations] == [6, 12]
    assert evaluations[-1]["accuracy"] == 1.0 and evaluations[-1]["margin"] > 0
    assert evaluations[-1]["perplexity"] is None  # a pairwise loss has none
    assert evaluations[-1]["loss"] < evaluations[0]["loss"]
    assert_every_pair_ranked_chosen_first(output, tiny)


def test_a_lora_reward_model_trains_its_score_head_and_merges_into_a_full_reward_model(
    tiny: TinyAssets, shared_trainer_runs: SharedLaunches
) -> None:
    """One process; the adapter keeps the whole score head beside the low-rank updates."""
    from safetensors.torch import load_file

    case = shared_trainer_runs.case(lora_case)
    case.check()
    output = case.directory / "out"
    steps = metrics(output, "step")
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"], [s["loss"] for s in steps]
    saved = load_file(output / "adapter_model.safetensors")
    assert any(".score." in name for name in saved), sorted(saved)
    assert json.loads((output / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    assert_every_pair_ranked_chosen_first(output / "merged", tiny)
