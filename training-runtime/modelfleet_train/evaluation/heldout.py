"""The held-out loss over every rank's share of the held-out rows, and the best of it so far.

Each rank scores its own share and the ranks add up the sums of the loss, of what it is averaged over
(label tokens, or preference pairs), of the correctly ranked pairs and of their reward margins: the
result is the mean over all held-out units, exactly, however the rows fall on the ranks and into
batches (a mean of per-rank or per-batch means would weigh a short batch like a full one).

Every rank runs the same number of forward passes (the most any rank needs), filling in with a one-
token batch whose sums it drops: sharded and replicated models alike communicate inside the forward
(FSDP and ZeRO-3 gather parameters, DDP broadcasts buffers), so a rank that stopped early would hang
the others.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from modelfleet_api.evaluation import EvaluationPoint, EvaluationStatus

from modelfleet_train import distributed
from modelfleet_train.data import IGNORE_INDEX, Collator, examples
from modelfleet_train.distributed import DistContext
from modelfleet_train.methods.objective import EvalSums, Objective
from modelfleet_train.strategies import Strategy


def filler_batch(pad_token_id: int, pairs: bool) -> dict[str, torch.Tensor]:
    """A one-token batch nothing is learnt from: it keeps a rank's forward passes in step with the others."""
    one = {
        "input_ids": torch.tensor([[pad_token_id]]),
        "labels": torch.tensor([[IGNORE_INDEX]]),
        "attention_mask": torch.tensor([[1]]),
    }
    if not pairs:
        return one
    return {f"{side}_{key}": value for side in ("chosen", "rejected") for key, value in one.items()}


def point_from_sums(step: int, sums: EvalSums, token_level: bool) -> EvaluationPoint:
    """The figures of summed held-out results: mean loss, its perplexity (token-level losses) or the
    share of correctly ranked pairs and their mean reward margin (preference methods)."""
    if sums.units <= 0:
        raise ValueError("evaluation: the held-out rows have no label token to score")
    loss = sums.loss / sums.units
    perplexity = math.exp(loss) if token_level and loss < 700 else None  # exp overflows a float above
    accuracy = None if token_level else sums.correct / sums.units
    margin = None if token_level else sums.margin / sums.units
    return EvaluationPoint(step=step, loss=loss, perplexity=perplexity, accuracy=accuracy, margin=margin)


@dataclass
class HeldOutEvaluator:
    """Scores this rank's share of the held-out rows; every rank calls `evaluate` together."""

    dataset: Any
    """This rank's held-out rows, tokenized."""
    batch_size: int
    collator: Collator
    objective: Objective
    ctx: DistContext

    def evaluate(self, strategy: Strategy, step: int) -> tuple[EvaluationPoint, float]:
        """The held-out figures of the model at `step` and the seconds it took (collective)."""
        started = time.perf_counter()
        rows = len(self.dataset)
        batches = -(-rows // self.batch_size)
        rounds = distributed.max_across_ranks(batches, self.ctx.device)
        pairs = "chosen_input_ids" in self.dataset.column_names
        filler = filler_batch(self.collator.pad_token_id, pairs)
        totals = [0.0] * len(EvalSums._fields)
        model = strategy.model
        model.eval()
        try:
            with torch.no_grad():
                for index in range(rounds):
                    real = index < batches
                    batch = self._batch(index) if real else filler
                    batch = {k: v.to(self.ctx.device) for k, v in batch.items()}
                    with strategy.forward_context():
                        sums = self.objective.eval_sums(model, batch)
                    if real:
                        totals = [t + s for t, s in zip(totals, sums, strict=True)]
        finally:
            model.train()
        summed = EvalSums(*distributed.sum_across_ranks(totals, self.ctx.device))
        return point_from_sums(step, summed, self.objective.token_level), time.perf_counter() - started

    def _batch(self, index: int) -> dict[str, torch.Tensor]:
        return self.collator(examples(self.dataset[index * self.batch_size : (index + 1) * self.batch_size]))


class EvaluationHistory:
    """The latest and the best (lowest loss) held-out figures; kept in every checkpoint, so a resumed
    run still knows which checkpoint is best."""

    def __init__(self, status: EvaluationStatus | None = None) -> None:
        self.status = status or EvaluationStatus()

    def record(self, point: EvaluationPoint) -> None:
        best = self.status.best
        self.status = EvaluationStatus(
            latest=point, best=point if best is None or point.loss < best.loss else best
        )

    @property
    def best_step(self) -> int | None:
        return self.status.best.step if self.status.best else None

    def point_at(self, step: int) -> EvaluationPoint | None:
        """The figures measured at `step`, if they are the latest or the best."""
        return next(
            (p for p in (self.status.latest, self.status.best) if p is not None and p.step == step), None
        )

    def to_state(self) -> dict[str, Any] | None:
        """What a checkpoint's trainer state keeps (None before the first measurement)."""
        return self.status.to_wire() if self.status.latest else None

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> EvaluationHistory:
        return cls(EvaluationStatus.model_validate(state) if state else None)
