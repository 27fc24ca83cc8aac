"""Evaluation of a TrainingJob: what to measure (``spec.evaluation``) and the figures measured.

Three kinds of evaluation, each optional:

- the held-out loss (and, for language modelling, its perplexity) while training runs: every
  `intervalSteps` and at the end, over the rows of the data set held out from training
  (`holdoutFraction`) or over a second data set (`dataset`), summed over every rank's share;
- generation metrics of the final model on a reference set (BLEU with sacrebleu, ROUGE with
  rouge-score, exact match);
- lm-evaluation-harness tasks run on the final model, by name or defined in files of their own.

The runtime reports the held-out figures in its progress (``EvaluationStatus``, mirrored into
``TrainingJob.status.evaluation``) and the final ones in ``lineage.EvaluationSummary``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modelfleet_api.base import ApiModel, CelRule, TextFormat
from modelfleet_api.storage import FileUri
from modelfleet_api.training import MAX_STEPS, DatasetSource, DatasetSpec

MAX_HOLDOUT_FRACTION = 0.5
"""Most of a data set that may be held out from training."""


class HeldOutDataset(DatasetSource):
    """A held-out data set of its own, read with the training data's `fields`."""

    cel_rules = DatasetSpec.cel_rules

    split: str = Field(default="validation", min_length=1, max_length=256)
    """Split to read (a name of your choice for jsonl and parquet files)."""


class GenerationMetric(StrEnum):
    BLEU = "bleu"
    ROUGE1 = "rouge1"
    ROUGE2 = "rouge2"
    ROUGE_L = "rougeL"
    ROUGE_LSUM = "rougeLsum"
    EXACT_MATCH = "exactMatch"


class ReferenceSetScoring(ApiModel):
    """How a reference set's rows are read and their answers scored: shared by a TrainingJob's
    `evaluation.generation` and a BenchmarkSweep's `quality.referenceSet`, which score the same way."""

    prompt_field: str = Field(default="prompt", min_length=1, max_length=256)
    """Column holding the prompt."""

    reference_field: str = Field(default="reference", min_length=1, max_length=256)
    """Column holding the reference answer (a string, or a list of strings: several references)."""

    metrics: list[GenerationMetric] = Field(
        default_factory=lambda: [GenerationMetric.BLEU, GenerationMetric.ROUGE_L],
        min_length=1,
        max_length=len(GenerationMetric),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """Scores to compute: `bleu` (sacrebleu's corpus BLEU, 0-100), `rouge1`, `rouge2`, `rougeL`,
    `rougeLsum` (rouge-score's F1 with stemming, averaged over the rows, 0-1) and `exactMatch` (share
    of answers equal to a reference after trimming whitespace, 0-1)."""

    max_new_tokens: int = Field(default=128, ge=1, le=8192)
    """Longest answer generated per prompt."""

    max_rows: int | None = Field(default=None, ge=1, le=1_000_000)
    """Score only the first this many rows; unset: all of them."""


class GenerationEvalSpec(ReferenceSetScoring):
    """Generation metrics of the final model on a reference set: each prompt is answered greedily (in the
    prompt format training used: the tokenizer's chat template when it has one) and the answers are
    scored against the references."""

    uri: FileUri
    """The reference set: a JSONL file (or a directory of them) on a PVC, in blob storage or in the pod."""

    batch_size: int = Field(default=8, ge=1, le=1024)
    """Prompts generated at once."""


LM_EVAL_TASK = TextFormat(
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
    message="must be an lm-evaluation-harness task, group or tag name (letters, digits, '_', '.', ':', '-')",
)


class LmEvalTasks(ApiModel):
    """Which lm-evaluation-harness tasks run and on how many documents: shared by a TrainingJob's
    `evaluation.lmEval` and a BenchmarkSweep's `quality.lmEval`."""

    tasks: list[Annotated[str, LM_EVAL_TASK.field(256), LM_EVAL_TASK.check()]] = Field(
        min_length=1, max_length=64, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Task (or group, or tag) names: the harness's own (their data sets are read from the Hugging Face
    hub, or its cache) or those defined in `tasksUri`."""

    num_fewshot: int | None = Field(default=None, ge=0, le=100)
    """Few-shot examples per prompt; unset: each task's own setting."""

    limit: int | None = Field(default=None, ge=1, le=10_000_000)
    """Evaluate only the first this many documents of each task; unset: all of them."""


class LmEvalSpec(LmEvalTasks):
    """lm-evaluation-harness tasks run on the final model by rank 0."""

    tasks_uri: FileUri | None = None
    """A directory of task definitions (the harness's YAML files) and the data they read; `data_files`
    paths in them are read relative to this directory."""

    batch_size: int = Field(default=1, ge=1, le=1024)
    """Requests scored at once."""

    apply_chat_template: bool = False
    """Render each prompt with the tokenizer's chat template (for chat-tuned models)."""


class EvaluationSpec(ApiModel):
    """Evaluate the model while it trains and after."""

    holdout_fraction: float | None = Field(default=None, gt=0.0, le=MAX_HOLDOUT_FRACTION)
    """Hold this fraction of the data set's rows out of training and measure the loss on them. The rows
    are chosen with a fixed seed (not `hyperparameters.seed`), so jobs on the same data that differ in
    their hyperparameters are measured on the same rows."""

    dataset: HeldOutDataset | None = None
    """Measure the loss on this data set instead (read like the training data, with its `fields`)."""

    interval_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    """Measure the held-out loss every this many optimizer steps, and at the end; unset: at every
    checkpoint (`checkpoint.intervalSteps`) and at the end."""

    generation: GenerationEvalSpec | None = None
    """Score the final model's answers on a reference set (BLEU, ROUGE, exact match)."""

    lm_eval: LmEvalSpec | None = None
    """Run lm-evaluation-harness tasks on the final model."""

    @property
    def holds_out(self) -> bool:
        """Whether a held-out loss is measured while training."""
        return self.holdout_fraction is not None or self.dataset is not None

    cel_rules = (
        CelRule(
            rule="!(has(self.holdoutFraction) && has(self.dataset))",
            message="holdoutFraction and dataset are two ways to choose the held-out data: set one",
            field_path=".dataset",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.intervalSteps) || has(self.holdoutFraction) || has(self.dataset)",
            message="intervalSteps is how often the held-out loss is measured: set holdoutFraction or "
            "dataset",
            field_path=".intervalSteps",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="has(self.holdoutFraction) || has(self.dataset) || has(self.generation) || has(self.lmEval)",
            message="evaluation needs something to measure: holdoutFraction or dataset (the held-out "
            "loss), generation or lmEval",
            field_path=".holdoutFraction",
            reason="FieldValueRequired",
        ),
    )


class EvaluationPoint(ApiModel):
    """The held-out figures of the model at one step."""

    step: int = Field(ge=0)
    """Optimizer step they were measured at."""

    loss: float
    """Held-out loss: the mean token cross-entropy of the held-out rows' label tokens (summed over every
    rank's share, then divided by their count); for preference methods, the mean pairwise loss."""

    perplexity: float | None = Field(default=None, ge=1.0)
    """exp(loss), for methods that model language (unset for preference methods)."""

    accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    """Preference methods: share of held-out pairs whose chosen answer scored above the rejected one."""

    margin: float | None = None
    """Preference methods: mean margin of the held-out pairs' rewards, chosen minus rejected (a reward
    model's scores; DPO's implicit rewards, beta times the log-ratio margin)."""


class EvaluationStatus(ApiModel):
    """Held-out figures while the job trains."""

    latest: EvaluationPoint | None = None
    """The latest measurement."""

    best: EvaluationPoint | None = None
    """The one with the lowest loss so far (what `output.select: best` writes)."""
