"""Optimizer and learning-rate schedule shared by the DDP and FSDP strategies (DeepSpeed builds its own
optimizer from the generated config but uses the same schedule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from modelfleet_api.training import Hyperparameters

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def build_optimizer(parameters: Iterable[torch.nn.Parameter], hp: Hyperparameters) -> torch.optim.Optimizer:
    trainable = [p for p in parameters if p.requires_grad]
    return torch.optim.AdamW(
        trainable,
        lr=hp.learning_rate,
        betas=ADAM_BETAS,
        eps=ADAM_EPS,
        weight_decay=hp.weight_decay,
        fused=torch.cuda.is_available(),
    )


def build_scheduler(optimizer: torch.optim.Optimizer, hp: Hyperparameters, total_steps: int) -> Any:
    from transformers import get_scheduler

    return get_scheduler(
        hp.lr_schedule.value, optimizer, num_warmup_steps=hp.warmup_steps, num_training_steps=total_steps
    )
