"""Scoring answers against references, and naming lm-evaluation-harness scores: the one implementation
the training runtime (a TrainingJob's `evaluation`, on the model it wrote) and the benchmark client (a
BenchmarkSweep's `quality`, on a served endpoint) both use, so a score means the same on either side.

- ``reference_rows`` reads a reference set (a JSONL file, or a directory of them): each row's prompt and
  its references (one string, or a list of them);
- ``score`` scores answers against their references: corpus BLEU with sacrebleu (0-100, its default 13a
  tokenization), ROUGE F1 with rouge-score (stemmed; with several references, the best one per row;
  averaged over the rows, 0-1) and exact match (an answer equal to a reference after trimming
  whitespace; the share of rows, 0-1);
- ``lm_eval_scores`` names the harness's results `lm-eval/<task>/<metric>` (`<metric>/<filter>` for a
  filter other than `none`), and ``lm_eval_task_manager`` finds the tasks (by name, or defined in a
  directory of task files).

sacrebleu, rouge-score and lm-eval are imported inside the functions that need them: the operator imports
this package without them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from modelfleet_api.evaluation import GenerationMetric, ReferenceSetScoring

ROUGE_METRICS = frozenset(
    {GenerationMetric.ROUGE1, GenerationMetric.ROUGE2, GenerationMetric.ROUGE_L, GenerationMetric.ROUGE_LSUM}
)
LM_EVAL_PREFIX = "lm-eval"
"""lm-evaluation-harness scores are named `lm-eval/<task>/<metric>[/<filter>]`."""

ReferenceRow = tuple[str, list[str]]
"""(prompt, references) of one row of a reference set."""


def reference_rows(path: Path, spec: ReferenceSetScoring, field: str) -> list[ReferenceRow]:
    """(prompt, references) of the reference set's rows at `path` (a JSONL file, or a directory whose
    `*.jsonl` files are read in name order), in file order, at most `maxRows`. Errors name `field`
    (e.g. `evaluation.generation`) and the row."""
    if not path.exists():
        raise FileNotFoundError(f"{field}.uri: {path} does not exist")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{field}.uri: no *.jsonl files under {path}")
    rows: list[ReferenceRow] = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{file.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{field}.uri: {where} is not a JSON object ({error})") from None
            rows.append(_reference_row(row, spec, field, where))
            if spec.max_rows is not None and len(rows) >= spec.max_rows:
                return rows
    if not rows:
        raise ValueError(f"{field}.uri: {path} holds no rows")
    return rows


def _reference_row(row: Any, spec: ReferenceSetScoring, field: str, where: str) -> ReferenceRow:
    if not isinstance(row, dict):
        raise ValueError(f"{field}.uri: {where} is not a JSON object")
    for key, name in (("promptField", spec.prompt_field), ("referenceField", spec.reference_field)):
        if name not in row:
            raise ValueError(f"{field}.{key}: {where} has no column {name!r} (it has {sorted(row)})")
    references = row[spec.reference_field]
    references = [references] if isinstance(references, str) else references
    if not isinstance(references, list) or not references or not all(isinstance(r, str) for r in references):
        raise ValueError(f"{field}.referenceField: {where} needs a string or a list of strings")
    return str(row[spec.prompt_field]), references


def score(
    metrics: list[GenerationMetric], answers: list[str], references: list[list[str]]
) -> dict[str, float]:
    """Each asked metric of the answers against their references, by its name."""
    scores: dict[str, float] = {}
    if GenerationMetric.BLEU in metrics:
        import sacrebleu

        streams = max(len(r) for r in references)
        # sacrebleu takes one stream per reference position; rows with fewer references pad with None
        transposed: Any = [[r[i] if i < len(r) else None for r in references] for i in range(streams)]
        scores[GenerationMetric.BLEU.value] = float(sacrebleu.corpus_bleu(answers, transposed).score)
    rouge = [m for m in metrics if m in ROUGE_METRICS]
    if rouge:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer([m.value for m in rouge], use_stemmer=True)
        rows = [scorer.score_multi(refs, answer) for answer, refs in zip(answers, references, strict=True)]
        for metric in rouge:
            scores[metric.value] = sum(row[metric.value].fmeasure for row in rows) / len(rows)
    if GenerationMetric.EXACT_MATCH in metrics:
        matches = [
            answer.strip() in {r.strip() for r in refs}
            for answer, refs in zip(answers, references, strict=True)
        ]
        scores[GenerationMetric.EXACT_MATCH.value] = sum(matches) / len(matches)
    return scores


def lm_eval_metric_name(task: str, key: str) -> str | None:
    """`lm-eval/<task>/<metric>` of a harness result key `<metric>,<filter>`; None for standard errors
    and for what is not a metric (`alias`, `sample_len`: no filter part)."""
    metric, comma, filter_name = key.partition(",")
    if not comma or metric.endswith("_stderr"):
        return None
    suffix = "" if filter_name in ("", "none") else f"/{filter_name}"
    return f"{LM_EVAL_PREFIX}/{task}/{metric}{suffix}"


def lm_eval_scores(
    results: dict[str, dict[str, Any]], higher_is_better: dict[str, dict[str, bool]] | None = None
) -> dict[str, float]:
    """The numeric scores of the harness's `results` section, by metric name. With the harness's
    `higher_is_better` section, only the scores it marks higher-is-better (a perplexity is left out)."""
    scores = {}
    for task, values in results.items():
        directions = (higher_is_better or {}).get(task) or {}
        for key, value in values.items():
            name = lm_eval_metric_name(task, key)
            if name is None or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            if higher_is_better is not None and directions.get(key.partition(",")[0]) is False:
                continue
            scores[name] = float(value)
    return scores


def lm_eval_task_manager(tasks: list[str], directory: Path | None, field: str) -> Any:
    """A harness task manager that knows every one of `tasks`, defined in `directory` (the local copy
    of `tasksUri`) or among the harness's own; fails naming `field` and the unknown tasks. The harness's
    index of its own few thousand tasks takes about ten CPU-seconds to build, so it is only built when a
    task is not defined in `directory`."""
    from lm_eval.tasks import TaskManager

    if directory is not None:
        local = TaskManager(include_path=str(directory), include_defaults=False)
        if not _unknown(tasks, local):
            return local
    manager = TaskManager(include_path=str(directory) if directory else None)
    unknown = _unknown(tasks, manager)
    if unknown:
        where = f" nor in tasksUri ({directory})" if directory else ""
        raise ValueError(
            f"{field}.tasks: {unknown} are not lm-evaluation-harness tasks, groups or tags{where}"
        )
    return manager


def _unknown(tasks: list[str], manager: Any) -> list[str]:
    return [task for task in tasks if not manager.match_tasks([task])]
