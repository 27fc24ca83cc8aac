"""Distribution strategies: how the model is wrapped, stepped, checkpointed and exported.

The training loop talks to every strategy through `Strategy`, so DDP, FSDP2 and DeepSpeed share one
loop, one checkpoint protocol and one resume path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import StrategyType

from modelfleet_train.distributed import DistContext


class Strategy(ABC):
    """One model being trained: forward through `model`, then `backward` per micro-batch and
    `optimizer_step` once per optimizer step."""

    model: Any
    """What the objective calls for the forward pass (the wrapped model)."""

    @abstractmethod
    def setup(self, model: torch.nn.Module, total_steps: int) -> None:
        """Wrap the model and build optimizer and scheduler."""

    @abstractmethod
    def forward_context(self) -> AbstractContextManager[Any]:
        """Context for the forward pass (autocast where the strategy casts on the fly)."""

    @abstractmethod
    def backward(self, loss: torch.Tensor, last_micro_batch: bool) -> None:
        """Backward one micro-batch's loss; gradients are synchronised only on the last one."""

    @abstractmethod
    def optimizer_step(self) -> float | None:
        """Clip, step optimizer and schedule, zero gradients; returns the gradient norm before clipping."""

    @abstractmethod
    def learning_rate(self) -> float:
        """The learning rate the next step will use."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write model, optimizer and scheduler state (collective: every rank calls it)."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Restore what `save` wrote (collective)."""

    @abstractmethod
    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The whole model's weights on rank 0 (empty elsewhere), for exporting (collective)."""

    @abstractmethod
    def unwrapped(self) -> Any:
        """The transformers/peft model inside the wrappers (its config, save_pretrained)."""

    def wrap_frozen(self, model: torch.nn.Module) -> torch.nn.Module:
        """Place a frozen helper model (DPO's reference) the way this strategy needs it."""
        return model


def build_strategy(config: TrainingRuntimeConfig, ctx: DistContext) -> Strategy:
    if config.strategy.type == StrategyType.DDP:
        from modelfleet_train.strategies.ddp import DdpStrategy

        return DdpStrategy(config, ctx)
    if config.strategy.type == StrategyType.FSDP:
        from modelfleet_train.strategies.fsdp import FsdpStrategy

        return FsdpStrategy(config, ctx)
    from modelfleet_train.strategies.deepspeed import DeepSpeedStrategy

    return DeepSpeedStrategy(config, ctx)
