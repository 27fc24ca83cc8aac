"""Next-token loss for full fine-tuning, pre-training, LoRA and QLoRA (labels already masked)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from modelfleet_train.data import IGNORE_INDEX
from modelfleet_train.methods.objective import EvalSums


class CausalLmObjective:
    token_level = True

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return model(**batch).loss, {}

    def eval_sums(self, model: Any, batch: dict[str, torch.Tensor]) -> EvalSums:
        """Cross-entropy summed over the label tokens (the model's own loss is their mean: sums add up
        across batches and ranks, means do not)."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits[:, :-1, :]
        labels = batch["labels"][:, 1:]
        summed = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        return EvalSums(loss=float(summed), units=float((labels != IGNORE_INDEX).sum()))
