"""Next-token loss for full fine-tuning, pre-training, LoRA and QLoRA (labels already masked)."""

from __future__ import annotations

from typing import Any

import torch


class CausalLmObjective:
    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return model(**batch).loss, {}
