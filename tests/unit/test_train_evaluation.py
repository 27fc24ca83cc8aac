"""The pure parts of evaluation: which rows are held out, how held-out sums become figures and the best
so far (the scoring shared with a sweep's quality step is in test_quality_scoring)."""

from __future__ import annotations

import math

import pytest
from modelfleet_api.evaluation import EvaluationPoint
from modelfleet_train import data
from modelfleet_train.evaluation.heldout import EvaluationHistory, filler_batch, point_from_sums
from modelfleet_train.methods.objective import EvalSums

pytestmark = pytest.mark.unit


def test_held_out_rows_are_a_fixed_seeded_share_disjoint_from_training() -> None:
    training, held_out = data.holdout_indices(256, 0.1)
    assert len(held_out) == 26 and len(training) == 230
    assert sorted(training + held_out) == list(range(256))
    assert held_out != list(range(26)), "a seeded choice, not the first rows"
    assert data.holdout_indices(256, 0.1) == (training, held_out), "the same rows every time"
    assert len(data.holdout_indices(5, 0.01)[1]) == 1, "at least one row"
    assert len(data.holdout_indices(2, 0.5)[0]) == 1, "never every row"
    with pytest.raises(ValueError, match=r"evaluation\.holdoutFraction"):
        data.holdout_indices(1, 0.5)


def test_figures_are_means_over_every_unit_not_means_of_means() -> None:
    # rank 0 scored 10 tokens with loss sum 20, rank 1 scored 2 tokens with loss sum 1: the mean is
    # 21 / 12 (a mean of the two ranks' means would say (2 + 0.5) / 2)
    point = point_from_sums(8, EvalSums(loss=21.0, units=12.0), token_level=True)
    assert point.loss == pytest.approx(21 / 12)
    assert point.perplexity == pytest.approx(math.exp(21 / 12))
    assert point.accuracy is None
    pairs = point_from_sums(8, EvalSums(loss=3.0, units=4.0, correct=3.0), token_level=False)
    assert (pairs.loss, pairs.perplexity, pairs.accuracy) == (0.75, None, 0.75)
    with pytest.raises(ValueError, match="no label token"):
        point_from_sums(8, EvalSums(0.0, 0.0), token_level=True)


def test_filler_batches_score_nothing() -> None:
    assert filler_batch(0, pairs=False)["labels"].tolist() == [[data.IGNORE_INDEX]]
    assert set(filler_batch(0, pairs=True)) == {
        f"{side}_{key}"
        for side in ("chosen", "rejected")
        for key in ("input_ids", "labels", "attention_mask")
    }


def test_history_keeps_the_latest_and_the_lowest_and_survives_a_checkpoint() -> None:
    history = EvaluationHistory()
    assert history.to_state() is None and history.best_step is None
    for step, loss in [(2, 3.0), (4, 2.0), (6, 2.5)]:
        history.record(EvaluationPoint(step=step, loss=loss))
    assert (history.status.latest.step, history.best_step) == (6, 4)  # type: ignore[union-attr]
    restored = EvaluationHistory.from_state(history.to_state())
    assert restored.status == history.status
    assert restored.point_at(4) == EvaluationPoint(step=4, loss=2.0)
    assert restored.point_at(2) is None
