"""Direct Preference Optimization (Rafailov et al., 2023) as a loss over our own training loop.

trl's DPOTrainer owns its loop (accelerate, its own checkpoints); the runtime needs DPO inside its
loop so strategies, checkpoints and resume work the same for every method, so the loss is here.
The policy's and reference's log-probabilities of the chosen and rejected responses give

    logits = (log pi(chosen) - log pi(rejected)) - (log ref(chosen) - log ref(rejected))

and the loss is -log sigmoid(beta * logits) (`sigmoid`), (logits - 1/(2 beta))^2 (`ipo`) or
relu(1 - beta * logits) (`hinge`), averaged over pairs.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from modelfleet_api.training import DpoSpec

from modelfleet_train.data import IGNORE_INDEX
from modelfleet_train.methods.objective import EvalSums


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, average: bool = False) -> torch.Tensor:
    """Sum (or mean, for IPO) over labelled tokens of log p(token | prefix), one value per sequence."""
    logits, labels = logits[:, :-1, :], labels[:, 1:]
    mask = labels != IGNORE_INDEX
    token_logps = torch.gather(logits.float().log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(
        -1
    )
    summed = (token_logps * mask).sum(-1)
    return summed / mask.sum(-1).clamp(min=1) if average else summed


def dpo_losses(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    *,
    beta: float,
    loss_type: str,
) -> torch.Tensor:
    """The loss of each pair."""
    logits = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    else:
        raise ValueError(f"method.dpo.lossType: unknown {loss_type!r}")
    return losses


def dpo_loss(*logps: torch.Tensor, beta: float, loss_type: str) -> torch.Tensor:
    """The mean loss over the pairs (arguments as `dpo_losses`)."""
    return dpo_losses(*logps, beta=beta, loss_type=loss_type).mean()


def concatenated_pairs(batch: dict[str, torch.Tensor], pad_token_id: int) -> tuple[torch.Tensor, ...]:
    """Chosen and rejected stacked into one batch (ids, attention mask, labels), so one forward (and one
    DDP reduction) serves both; the shorter side is padded with `pad_token_id`."""
    length = max(batch["chosen_input_ids"].shape[1], batch["rejected_input_ids"].shape[1])

    def padded(tensor: torch.Tensor, value: int) -> torch.Tensor:
        return F.pad(tensor, (0, length - tensor.shape[1]), value=value)

    ids = torch.cat([padded(batch[f"{s}_input_ids"], pad_token_id) for s in ("chosen", "rejected")])
    mask = torch.cat([padded(batch[f"{s}_attention_mask"], 0) for s in ("chosen", "rejected")])
    labels = torch.cat([padded(batch[f"{s}_labels"], IGNORE_INDEX) for s in ("chosen", "rejected")])
    return ids, mask, labels


class DpoObjective:
    """DPO against a frozen reference: a separate model (full DPO) or the policy with adapters off (LoRA)."""

    token_level = False

    def __init__(self, spec: DpoSpec, reference: Any | None) -> None:
        self.spec, self.reference = spec, reference

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        losses, margin = self._pairs(model, batch)
        return losses.mean(), {
            "reward_accuracy": (margin > 0).float().mean().item(),
            "reward_margin": (self.spec.beta * margin).mean().item(),
        }

    def eval_sums(self, model: Any, batch: dict[str, torch.Tensor]) -> EvalSums:
        losses, margin = self._pairs(model, batch)
        rewards = self.spec.beta * margin
        return EvalSums(
            float(losses.sum()), float(losses.numel()), float((margin > 0).sum()), float(rewards.sum())
        )

    def _pairs(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pair's loss and implicit reward margin (policy over reference, chosen over rejected)."""
        ids, mask, labels = concatenated_pairs(batch, pad_token_id=0)  # the labels mask the padding
        pairs = batch["chosen_input_ids"].shape[0]
        average = self.spec.loss_type == "ipo"
        policy = sequence_logps(model(input_ids=ids, attention_mask=mask).logits, labels, average)
        with torch.no_grad(), self._reference_context(model) as reference:
            ref = sequence_logps(reference(input_ids=ids, attention_mask=mask).logits, labels, average)
        losses = dpo_losses(
            policy[:pairs],
            policy[pairs:],
            ref[:pairs],
            ref[pairs:],
            beta=self.spec.beta,
            loss_type=self.spec.loss_type,
        )
        return losses, (policy[:pairs] - ref[:pairs]) - (policy[pairs:] - ref[pairs:])

    def _reference_context(self, model: Any) -> Any:
        if self.reference is not None:
            return nullcontext(self.reference)
        return _AdaptersDisabled(model)


class _AdaptersDisabled:
    """The policy itself with its LoRA adapters switched off, i.e. the base model it started from."""

    def __init__(self, model: Any) -> None:
        self.model = model
        peft_model = model
        while not hasattr(peft_model, "disable_adapter"):
            peft_model = peft_model.module
        self._context = peft_model.disable_adapter()

    def __enter__(self) -> Any:
        self._context.__enter__()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)
