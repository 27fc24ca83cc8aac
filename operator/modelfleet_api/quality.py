"""Quality of a served model in a BenchmarkSweep (``spec.quality``, and a canary analysis' benchmark):
what each point's benchmark pod scores after its load phase, the floors its scores must reach, and the
scores it reports.

The pod scores the target through the endpoint the load used (the OpenAI API): the answers to a
reference set's prompts (greedy, temperature 0) against their references, and lm-evaluation-harness
tasks run through the harness's own OpenAI clients (`local-chat-completions` or `local-completions`).
It scores the way a TrainingJob's `evaluation` scores the model it wrote (``modelfleet_api.scoring``
for both, with the same metric names), and its requests are not counted in the latency figures.
Every score reported is higher-is-better, so a floor is a minimum and a regression is a lower score.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import Field, model_validator

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.evaluation import LmEvalTasks, ReferenceSetScoring
from modelfleet_api.scoring import LM_EVAL_PREFIX
from modelfleet_api.storage import PodFileUri

MAX_FLOORS = 8
FLOOR_NAME = r"^[A-Za-z0-9_.:/-]{1,128}$"
"""A floor's metric name: short, and of characters JSON does not escape, so that with at most
`MAX_FLOORS` of them the floored scores always fit the termination message a point's figures travel
in (4096 bytes)."""
FLOOR_NAME_TEXT = "at most 128 letters, digits, '_', '.', ':', '/' and '-'"


class ReferenceSet(ReferenceSetScoring):
    """Prompts with reference answers: each prompt is sent to the target (one user message with
    `openai-chat`, the prompt as it is with `openai-completions`), answered greedily (temperature 0, at
    most `maxNewTokens`), and the answers are scored against the references."""

    uri: PodFileUri
    """The reference set: a JSONL file, or a directory of them (read in name order); a path in the pod
    or Azure Blob storage (a file, or a prefix of files), downloaded with the pod's identity."""


class EndpointLmEval(LmEvalTasks):
    """lm-evaluation-harness tasks run against the target's OpenAI API: with protocol `openai-chat`
    through the harness's `local-chat-completions` (each prompt rendered as chat messages; only
    `generate_until` tasks, since a chat API returns no log-probabilities), with `openai-completions`
    through `local-completions` (every task kind; log-likelihood tasks need an engine that returns
    prompt log-probabilities, `echo` with `logprobs`, and the model's tokenizer)."""

    tasks_uri: PodFileUri | None = None
    """A directory of task definitions (the harness's YAML files) and the data they read, in the pod or
    under an Azure Blob prefix; `data_files` paths in them are read relative to this directory."""


class QualitySpec(ApiModel):
    """Score the quality of each target's answers, and the floors they must reach."""

    reference_set: ReferenceSet | None = None
    """Score answers to a reference set's prompts (BLEU, ROUGE, exact match)."""

    lm_eval: EndpointLmEval | None = None
    """Run lm-evaluation-harness tasks against the target."""

    floors: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict, max_length=MAX_FLOORS)
    """The lowest score each named metric may have: a `referenceSet.metrics` entry (`bleu` is 0-100,
    the others 0-1) or an lm-eval score `lm-eval/<task>/<metric>` (`<metric>/<filter>` for a filter
    other than `none`), e.g. `{rougeL: 0.3, lm-eval/arc_easy/acc: 0.6}`. A point meets the floor when
    it has every floored score at or above its floor; `bestPerSlo` names only such points, and a canary
    analysis promotes only a canary that does."""

    concurrency: int = Field(default=4, ge=1, le=256)
    """Scoring requests in flight at once (reference set and lm-eval tasks alike)."""

    cel_rules = (
        CelRule(
            rule="has(self.referenceSet) || has(self.lmEval)",
            message="quality needs something to score: set referenceSet, lmEval or both",
            field_path=".referenceSet",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.floors) || self.floors.all(k, "
            "(has(self.referenceSet) && k in self.referenceSet.metrics) || (has(self.lmEval) && "
            f"self.lmEval.tasks.exists(t, k.startsWith('{LM_EVAL_PREFIX}/' + t + '/'))))",
            message="floors: each key must name a score this section computes: one of referenceSet.metrics, "
            f"or {LM_EVAL_PREFIX}/<task>/<metric> of a task in lmEval.tasks",
            field_path=".floors",
        ),
        CelRule(
            rule=f'!has(self.floors) || self.floors.all(k, k.matches(r"{FLOOR_NAME}"))',
            message=f"floors: each key is a metric name of {FLOOR_NAME_TEXT}",
            field_path=".floors",
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reference_set is None and self.lm_eval is None:
            raise ValueError("quality: quality needs something to score: set referenceSet, lmEval or both")
        malformed = [name for name in self.floors if not re.fullmatch(FLOOR_NAME, name)]
        if malformed:
            raise ValueError(f"quality.floors: each key is a metric name of {FLOOR_NAME_TEXT}: {malformed}")
        unknown = [name for name in self.floors if not self.computes(name)]
        if unknown:
            raise ValueError(
                f"quality.floors: {unknown} name no score this section computes: one of "
                f"referenceSet.metrics, or {LM_EVAL_PREFIX}/<task>/<metric> of a task in lmEval.tasks"
            )
        return self

    def computes(self, name: str) -> bool:
        """Whether `name` is a score this section computes (the floors' rule)."""
        if self.reference_set is not None and name in {m.value for m in self.reference_set.metrics}:
            return True
        tasks = self.lm_eval.tasks if self.lm_eval is not None else []
        return any(name.startswith(f"{LM_EVAL_PREFIX}/{task}/") for task in tasks)


class PointQuality(ApiModel):
    """The quality scores of one measured point."""

    scores: dict[str, float] = Field(default_factory=dict)
    """Every score measured, by name: the reference set's (`bleu`, `rougeL`, `exactMatch`...) and the
    lm-eval tasks' (`lm-eval/<task>/<metric>`; those the harness marks lower-is-better, such as a
    perplexity, are in the point's results.json only). Rounded to 4 decimals."""

    meets_floor: bool | None = None
    """Whether every floored score is at or above its floor (the client's check, on unrounded scores);
    unset without `floors`."""

    scores_left_out: int | None = Field(default=None, ge=1)
    """Scores measured but left out of `scores`: they did not fit the termination message the point's
    figures travel in (the floored ones always do); results.json holds them all."""


def floor_misses(quality: PointQuality | None, floors: Mapping[str, float]) -> list[str]:
    """Each floor a point's scores miss, as `rougeL 0.21 < 0.3` (`not measured` when it has no such
    score), and the client's own verdict on unrounded scores."""
    scores = quality.scores if quality is not None else {}
    found = []
    for metric, floor in floors.items():
        value = scores.get(metric)
        if value is None:
            found.append(f"{metric} not measured")
        elif value < floor:
            found.append(f"{metric} {value:g} < {floor:g}")
    if floors and not found and quality is not None and quality.meets_floor is False:
        found.append("meetsFloor false (the client's check on unrounded scores)")
    return found
