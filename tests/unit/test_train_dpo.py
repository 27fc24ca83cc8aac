"""The DPO loss and sequence log-probabilities against computations written out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from modelfleet_train.data import IGNORE_INDEX
from modelfleet_train.methods.dpo import dpo_loss, sequence_logps

pytestmark = pytest.mark.unit

# policy chosen/rejected, reference chosen/rejected log-probabilities of two pairs
POLICY_CHOSEN, POLICY_REJECTED = [-4.0, -7.5], [-6.0, -7.0]
REFERENCE_CHOSEN, REFERENCE_REJECTED = [-5.0, -7.0], [-5.5, -6.0]


def reference_loss(beta: float, loss_type: str) -> float:
    """The papers' formulas, one pair at a time, in plain floats."""
    losses = []
    for pc, pr, rc, rr in zip(
        POLICY_CHOSEN, POLICY_REJECTED, REFERENCE_CHOSEN, REFERENCE_REJECTED, strict=True
    ):
        h = (pc - pr) - (rc - rr)
        if loss_type == "sigmoid":
            losses.append(-math.log(1 / (1 + math.exp(-beta * h))))
        elif loss_type == "ipo":
            losses.append((h - 1 / (2 * beta)) ** 2)
        else:
            losses.append(max(0.0, 1 - beta * h))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_matches_the_formula(loss_type: str, beta: float) -> None:
    tensors = [
        torch.tensor(v) for v in (POLICY_CHOSEN, POLICY_REJECTED, REFERENCE_CHOSEN, REFERENCE_REJECTED)
    ]
    assert dpo_loss(*tensors, beta=beta, loss_type=loss_type).item() == pytest.approx(
        reference_loss(beta, loss_type)
    )


def test_sigmoid_loss_is_log2_when_policy_equals_reference() -> None:
    same = torch.tensor([-3.0, -2.0])
    assert dpo_loss(same, same - 1, same, same - 1, beta=0.1, loss_type="sigmoid").item() == pytest.approx(
        math.log(2)
    )


def test_sequence_logps_sums_log_probabilities_of_labelled_next_tokens() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 1]])
    probabilities = logits.softmax(-1)
    # position t's logits predict token t + 1: tokens 3 and 1 are predicted at positions 1 and 2
    expected = math.log(probabilities[0, 1, 3]) + math.log(probabilities[0, 2, 1])
    assert sequence_logps(logits, labels).item() == pytest.approx(expected, rel=1e-5)
    assert sequence_logps(logits, labels, average=True).item() == pytest.approx(expected / 2, rel=1e-5)
