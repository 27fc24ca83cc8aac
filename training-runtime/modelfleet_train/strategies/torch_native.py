"""What DDP and FSDP2 share: a torch AdamW and schedule, clipping, and torch.distributed.checkpoint.

DCP writes each rank's shard in parallel and can reshard on load, and `get_state_dict` gives the
same API for a DDP-replicated and an FSDP-sharded model.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed.checkpoint as dcp
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from modelfleet_train.distributed import DistContext
from modelfleet_train.methods import uses_adapters
from modelfleet_train.optim import build_optimizer, build_scheduler
from modelfleet_train.strategies import Strategy

SCHEDULER_FILE = "scheduler.pt"
STATE_DIR = "state"


class TorchNativeStrategy(Strategy):
    def __init__(self, config: TrainingRuntimeConfig, ctx: DistContext) -> None:
        self.config, self.ctx = config, ctx
        self.hp = config.hyperparameters
        # adapters: the frozen base comes from model.uri on resume, so checkpoints hold only adapters
        adapters_only = uses_adapters(config)
        self.state_options = StateDictOptions(ignore_frozen_params=adapters_only)
        # loading them is not strict (the base they lack would be "missing"); dcp.load has already
        # failed if the checkpoint lacked any tensor the model trains
        self.load_options = StateDictOptions(ignore_frozen_params=adapters_only, strict=not adapters_only)
        self.optimizer: torch.optim.Optimizer
        self.scheduler: Any

    def build_optimization(self, total_steps: int) -> None:
        self.optimizer = build_optimizer(self.model.parameters(), self.hp)
        self.scheduler = build_scheduler(self.optimizer, self.hp, total_steps)

    def forward_context(self) -> Any:
        return nullcontext()

    def backward(self, loss: torch.Tensor, last_micro_batch: bool) -> None:
        with self.sync_context(last_micro_batch):
            (loss / self.hp.gradient_accumulation_steps).backward()

    def sync_context(self, last_micro_batch: bool) -> Any:
        return nullcontext()

    def optimizer_step(self) -> float | None:
        norm = None
        if self.hp.max_grad_norm > 0:
            total = torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.grad is not None], self.hp.max_grad_norm
            )
            norm = float(total.full_tensor() if hasattr(total, "full_tensor") else total)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def learning_rate(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, directory: Path) -> None:
        model_state, optim_state = get_state_dict(self.model, self.optimizer, options=self.state_options)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=directory / STATE_DIR)
        if self.ctx.is_main:
            torch.save(self.scheduler.state_dict(), directory / SCHEDULER_FILE)

    def load(self, directory: Path) -> None:
        model_state, optim_state = get_state_dict(self.model, self.optimizer, options=self.state_options)
        state: dict[str, Any] = {"model": model_state, "optim": optim_state}
        dcp.load(state, checkpoint_id=directory / STATE_DIR)
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optim"],
            options=self.load_options,
        )
        self.scheduler.load_state_dict(torch.load(directory / SCHEDULER_FILE, weights_only=True))

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        # a full state dict holds tensors only (ValueType also covers DTensors and nested dicts)
        state = get_model_state_dict(
            self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        return cast(dict[str, torch.Tensor], state)
