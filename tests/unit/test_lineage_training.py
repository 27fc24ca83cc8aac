"""A Succeeded TrainingJob's structured output (``status.output``): what rank 0 reported in its last
progress, or, from a runtime that reported nothing, what the spec says it wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from modelfleet_api.lineage import EvaluationSummary, OutputKind, TrainingOutput, TrainingResult
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.training.policies.output import training_output

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def spec(method: str, merge: bool = False) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(
        {
            "model": {"uri": "org/base", "revision": "v2"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            "method": {"type": method},
            "output": {"uri": "pvc://work/out/", "mergeAdapter": merge},
        }
    )


def test_the_runtimes_report_is_the_output() -> None:
    result = TrainingResult(
        kind=OutputKind.ADAPTER,
        uri="pvc://work/out/",
        merged_uri="pvc://work/out/merged",
        step=120,
        evaluation=EvaluationSummary(eval_loss=1.25, perplexity=3.49, metrics={"rougeL": 0.41}),
    )
    progress = TrainingProgress(step=120, updated_at=AT, result=result)

    assert training_output(spec("lora", merge=True), progress) == TrainingOutput(
        uri="pvc://work/out/",
        kind=OutputKind.ADAPTER,
        base_model="org/base",
        base_model_revision="v2",
        merged_uri="pvc://work/out/merged",
        step=120,
        evaluation=EvaluationSummary(eval_loss=1.25, perplexity=3.49, metrics={"rougeL": 0.41}),
    )


@pytest.mark.parametrize(
    ("method", "merge", "kind", "merged"),
    [
        ("full", False, OutputKind.MODEL, None),
        ("pretrain", False, OutputKind.MODEL, None),
        ("lora", False, OutputKind.ADAPTER, None),
        ("lora", True, OutputKind.ADAPTER, "pvc://work/out/merged"),
        ("reward", False, OutputKind.MODEL, None),
    ],
)
def test_without_a_report_the_spec_says_what_was_written(
    method: str, merge: bool, kind: OutputKind, merged: str | None
) -> None:
    progress = TrainingProgress(step=90, total_steps=90, updated_at=AT)

    assert training_output(spec(method, merge), progress) == TrainingOutput(
        uri="pvc://work/out/",
        kind=kind,
        base_model="org/base",
        base_model_revision="v2",
        merged_uri=merged,
        step=90,
    )
    assert training_output(spec(method, merge), None).step is None, "no step is made up"


def test_a_tokenizer_job_wrote_a_tokenizer_of_no_base_model() -> None:
    job = TrainingJobSpec.model_validate(
        {
            "dataset": {"uri": "pvc://data/corpus.jsonl"},
            "method": {"type": "tokenizer"},
            "output": {"uri": "pvc://work/tokenizer"},
        }
    )
    reported = TrainingResult(kind=OutputKind.TOKENIZER, uri="pvc://work/tokenizer")
    done = TrainingProgress(step=5000, total_steps=5000, updated_at=AT, result=reported)

    expected = TrainingOutput(uri="pvc://work/tokenizer", kind=OutputKind.TOKENIZER, base_model=None)
    assert training_output(job, done) == expected
    assert training_output(job, None) == expected, "the spec alone says a tokenizer was written"
