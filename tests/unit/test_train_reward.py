"""The reward objective on a tiny sequence-classification model: the Bradley-Terry loss of each pair,
and a score that does not depend on how much padding the batch gave the sequence."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from modelfleet_train.data import Collator, preference
from modelfleet_train.methods.reward import RewardObjective

from hack import tinymodel

pytestmark = pytest.mark.unit

PAIRS = [
    ("How many red cats are there?", "There are 3 red cats.", "I saw dog red maybe."),
    ("How many blue owls are there?", "There are 7 blue owls and they sit on a long branch.", "No."),
]


def reward_model_and_tokenizer() -> tuple[torch.nn.Module, object]:
    from transformers import AutoModelForSequenceClassification, LlamaConfig

    tokenizer = tinymodel.train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    return model, tokenizer


def test_the_loss_is_the_bradley_terry_likelihood_of_each_pair_scored_alone() -> None:
    model, tokenizer = reward_model_and_tokenizer()
    rows = [preference(tokenizer, p, c, r, 64) for p, c, r in PAIRS]
    batch = Collator(tokenizer.pad_token_id)(rows)
    assert batch["chosen_input_ids"].shape[1] != batch["rejected_input_ids"].shape[1], "sides padded apart"

    objective = RewardObjective(tokenizer.pad_token_id)
    with torch.no_grad():
        loss, scalars = objective(model, batch)
        sums = objective.eval_sums(model, batch)
        alone = [
            [
                model(input_ids=torch.tensor([row[f"{side}_input_ids"]])).logits[0, 0]
                for side in ("chosen", "rejected")
            ]
            for row in rows
        ]
    margins = torch.tensor([chosen - rejected for chosen, rejected in alone])
    expected = -F.logsigmoid(margins)
    assert loss.item() == pytest.approx(expected.mean().item(), rel=1e-5)
    assert scalars["reward_margin"] == pytest.approx(margins.mean().item(), rel=1e-5)
    assert scalars["reward_accuracy"] == (margins > 0).float().mean().item()
    assert (sums.loss, sums.units) == (pytest.approx(expected.sum().item(), rel=1e-5), 2.0)
    assert sums.margin == pytest.approx(margins.sum().item(), rel=1e-5)
    assert sums.correct == (margins > 0).sum().item()


def test_equal_scores_cost_log_2() -> None:
    class Constant(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
            return type("Out", (), {"logits": torch.zeros(input_ids.shape[0], 1)})()

    batch = {
        f"{side}_{key}": torch.ones(3, 4, dtype=torch.long)
        for side in ("chosen", "rejected")
        for key in ("input_ids", "attention_mask", "labels")
    }
    loss, scalars = RewardObjective(0)(Constant(), batch)
    assert loss.item() == pytest.approx(math.log(2))
    assert scalars == {"reward_accuracy": 0.0, "reward_margin": 0.0}
