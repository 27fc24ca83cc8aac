"""What every training method's objective provides: its training loss, and its held-out sums."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch


class EvalSums(NamedTuple):
    """A held-out batch's contribution, summed so that ranks and batches add up exactly: the loss
    summed over the units it is averaged over (label tokens, or preference pairs), their number, and
    for preference methods the pairs ranked correctly and their reward margins."""

    loss: float
    units: float
    correct: float = 0.0
    margin: float = 0.0


class Objective(Protocol):
    token_level: bool
    """Whether the loss is a mean over tokens (so exp(loss) is a perplexity) rather than over pairs."""

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one micro-batch and extra scalars to report."""

    def eval_sums(self, model: Any, batch: dict[str, torch.Tensor]) -> EvalSums:
        """The held-out sums of one batch (called under no_grad, the model in eval mode)."""
