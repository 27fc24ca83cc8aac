"""Where a served model came from: what a TrainingJob wrote, and how a ModelDeployment names it.

Three parts, shared by the operator and the training runtime:

- ``TrainingResult``: what rank 0 reports once training ended (inside its last ``TrainingProgress``):
  the kind of output it wrote, where, at which step, the merged model when ``output.mergeAdapter``
  asked for one, and the evaluation figures (filled in by the runtime's evaluation; absent figures
  stay unset, never zero).
- ``TrainingOutput``: the structured output in ``TrainingJob.status.output``, which the operator
  writes when the job Succeeded, from the spec and that report.
- ``ServedModel``: the model a ModelDeployment track resolved (``status.model``): the URI it serves,
  whether it is a full model or an adapter on a base model, and the TrainingJob (name and UID) behind
  it, so a benchmark point or a canary decision names exactly what it measured.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modelfleet_api.base import ApiModel
from modelfleet_api.common import ObjectName
from modelfleet_api.training import MethodSpec, TrainingMethod

MERGED_SUBDIR = "merged"
"""With ``output.mergeAdapter``, the merged model is written under ``<output.uri>/merged``."""


def merged_uri(output_uri: str) -> str:
    """Where the merged model of a job writing to ``output_uri`` is (``output.mergeAdapter``)."""
    return f"{output_uri.rstrip('/')}/{MERGED_SUBDIR}"


class OutputKind(StrEnum):
    MODEL = "model"
    """A full model (transformers checkpoint): served as it is."""
    ADAPTER = "adapter"
    """A LoRA adapter (peft checkpoint): served on its base model through the engine's LoRA support."""
    TOKENIZER = "tokenizer"
    """A tokenizer alone (method `tokenizer`): read by later TrainingJobs (`model.tokenizerUri`), never
    served."""


def output_kind(method: MethodSpec) -> OutputKind:
    """What a job of this method writes."""
    if method.type is TrainingMethod.TOKENIZER:
        return OutputKind.TOKENIZER
    return OutputKind.ADAPTER if method.trains_adapters else OutputKind.MODEL


class EvaluationSummary(ApiModel):
    """Evaluation figures of the weights written, as the training runtime measured them."""

    eval_loss: float | None = None
    """Held-out loss of the weights written (`step`; the best checkpoint's with `output.select: best`):
    the mean token cross-entropy of the held-out label tokens (for preference methods, the mean pairwise
    loss)."""

    perplexity: float | None = Field(default=None, ge=1.0)
    """exp(evalLoss), for methods that model language."""

    best_eval_loss: float | None = None
    """Lowest eval loss measured during training."""

    best_step: int | None = Field(default=None, ge=0)
    """Step of `bestEvalLoss`."""

    metrics: dict[str, float] = Field(default_factory=dict)
    """Further scores of the final model by name: `bleu`, `rougeL`, `lm-eval/<task>/<metric>`..."""


class TrainingResult(ApiModel):
    """What rank 0 reports after training (``TrainingProgress.result``): the contract by which the
    runtime tells the operator what it wrote."""

    kind: OutputKind
    """A full model, an adapter or a tokenizer."""

    uri: str = Field(min_length=1, max_length=1024)
    """Where it is (`output.uri`)."""

    merged_uri: str | None = Field(default=None, min_length=1, max_length=1024)
    """Where the adapter merged into its base model is (with `output.mergeAdapter`)."""

    step: int | None = Field(default=None, ge=0)
    """Optimizer step of the weights written (unset for a tokenizer)."""

    evaluation: EvaluationSummary | None = None
    """Evaluation figures; unset when the job evaluates nothing."""


class TrainingOutput(ApiModel):
    """What a Succeeded TrainingJob wrote, for ModelDeployments that serve it (`model.fromTrainingJob`)."""

    uri: str
    """Where the model, adapter or tokenizer is (`spec.output.uri`)."""

    kind: OutputKind
    """`model` (a full model), `adapter` (a LoRA adapter for `baseModel`) or `tokenizer` (method
    `tokenizer`: a later job reads it with `model.tokenizerUri`)."""

    base_model: str | None = None
    """The model training started from (`spec.model.uri`): what an adapter is served on (unset for a
    tokenizer)."""

    base_model_revision: str | None = None
    """Hub revision of the base model (`spec.model.revision`)."""

    merged_uri: str | None = None
    """The adapter merged into the base model (`output.mergeAdapter`), a full model."""

    step: int | None = Field(default=None, ge=0)
    """Optimizer step of the weights written, as rank 0 reported it."""

    evaluation: EvaluationSummary | None = None
    """Evaluation figures, as rank 0 reported them."""


class TrainingJobRef(ApiModel):
    name: ObjectName
    """Name of a TrainingJob in the same namespace."""


class TrainingJobOrigin(ApiModel):
    """The TrainingJob a served model came from."""

    name: str
    """Its name."""

    uid: str
    """Its UID: a job deleted and created again under the same name is another job."""


class ServedModel(ApiModel):
    """The model a track serves, resolved by the operator."""

    uri: str
    """What the engine loads: the model, or for an adapter its base model."""

    revision: str | None = None
    """Hub revision of `uri`."""

    kind: OutputKind = OutputKind.MODEL
    """`model`, or `adapter` (served through the engine's LoRA support on `uri`)."""

    adapter_uri: str | None = None
    """The adapter served on `uri` (kind `adapter`)."""

    training_job: TrainingJobOrigin | None = None
    """The TrainingJob behind it (`model.fromTrainingJob`)."""

    source: str
    """Where the model came from, in short, for `kubectl get`: `trainingjob/NAME (adapter)`, or the URI."""
