"""Reward-model training: a scalar score head on the model, trained on preference pairs.

The model is transformers' sequence-classification variant of the base with one label: it scores a
sequence by its head's output at the last token that is not padding (the model's config names the
padding token, the one the batches are padded with). Each pair's chosen and rejected sequence are
scored in one forward pass, and the loss is the Bradley-Terry negative log-likelihood of the
preference (Ouyang et al., 2022, eq. 1):

    loss = -log sigmoid(r(chosen) - r(rejected))

averaged over the pairs. The margin r(chosen) - r(rejected) and the share of pairs it ranks right are
reported with every step and on the held-out pairs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from modelfleet_train.methods.dpo import concatenated_pairs
from modelfleet_train.methods.objective import EvalSums


class RewardObjective:
    token_level = False

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id
        """The padding the batches get: the model reads each score at the last token that is not it."""

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        losses, margin = self._pairs(model, batch)
        return losses.mean(), {
            "reward_accuracy": (margin > 0).float().mean().item(),
            "reward_margin": margin.mean().item(),
        }

    def eval_sums(self, model: Any, batch: dict[str, torch.Tensor]) -> EvalSums:
        losses, margin = self._pairs(model, batch)
        return EvalSums(
            float(losses.sum()), float(losses.numel()), float((margin > 0).sum()), float(margin.sum())
        )

    def _pairs(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pair's loss and reward margin (chosen minus rejected)."""
        ids, mask, _ = concatenated_pairs(batch, self.pad_token_id)
        pairs = batch["chosen_input_ids"].shape[0]
        rewards = model(input_ids=ids, attention_mask=mask).logits.float().squeeze(-1)
        margin = rewards[:pairs] - rewards[pairs:]
        return -F.logsigmoid(margin), margin
