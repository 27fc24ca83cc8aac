"""Generation metrics of the final model on a reference set (`evaluation.generation`).

Each prompt is rendered as training rendered prompts (the chat template with a generation prompt when
the tokenizer has one, else BOS + prompt), answered greedily, and the answers are scored against the
references: corpus BLEU with sacrebleu (0-100, its default 13a tokenization), ROUGE F1 with
rouge-score (stemmed; with several references, the best one per row; averaged over the rows, 0-1)
and exact match (0-1). Rows may carry one reference or a list of them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from modelfleet_api.evaluation import GenerationEvalSpec, GenerationMetric

from modelfleet_train import data

log = logging.getLogger(__name__)

ROUGE_METRICS = {
    GenerationMetric.ROUGE1,
    GenerationMetric.ROUGE2,
    GenerationMetric.ROUGE_L,
    GenerationMetric.ROUGE_LSUM,
}


def reference_rows(spec: GenerationEvalSpec, cache_root: Path) -> list[tuple[str, list[str]]]:
    """(prompt, references) of the reference set's rows, in file order (at most `maxRows`)."""
    path = data.materialize(spec.uri, cache_root)
    if not path.exists():
        raise FileNotFoundError(f"evaluation.generation.uri: {path} does not exist")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"evaluation.generation.uri: no *.jsonl files under {path}")
    rows: list[tuple[str, list[str]]] = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            rows.append(_reference_row(row, spec, f"{file.name}:{number}"))
            if spec.max_rows is not None and len(rows) >= spec.max_rows:
                return rows
    if not rows:
        raise ValueError(f"evaluation.generation.uri: {path} holds no rows")
    return rows


def _reference_row(row: dict[str, Any], spec: GenerationEvalSpec, where: str) -> tuple[str, list[str]]:
    for field, name in (("promptField", spec.prompt_field), ("referenceField", spec.reference_field)):
        if name not in row:
            raise ValueError(
                f"evaluation.generation.{field}: {where} has no column {name!r} (it has {sorted(row)})"
            )
    references = row[spec.reference_field]
    references = [references] if isinstance(references, str) else list(references)
    if not references or not all(isinstance(r, str) for r in references):
        raise ValueError(f"evaluation.generation.referenceField: {where} needs a string or a list of strings")
    return str(row[spec.prompt_field]), references


def generate(
    model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy answers to `prompts` (left-padded batches; only the new tokens are decoded)."""
    device = next(model.parameters()).device
    answers = []
    for start in range(0, len(prompts), batch_size):
        encoded = [data.prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        longest = max(len(ids) for ids in encoded)
        ids = [[tokenizer.pad_token_id] * (longest - len(e)) + e for e in encoded]
        mask = [[0] * (longest - len(e)) + [1] * len(e) for e in encoded]
        with torch.no_grad():
            output = model.generate(
                input_ids=torch.tensor(ids, device=device),
                attention_mask=torch.tensor(mask, device=device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                use_cache=True,  # training switched the cache off in the saved config
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        answers += tokenizer.batch_decode(output[:, longest:], skip_special_tokens=True)
    return answers


def score(
    metrics: list[GenerationMetric], answers: list[str], references: list[list[str]]
) -> dict[str, float]:
    """Each asked metric of the answers against their references, by its name."""
    scores: dict[str, float] = {}
    if GenerationMetric.BLEU in metrics:
        import sacrebleu

        streams = max(len(r) for r in references)
        # sacrebleu takes one stream per reference position; rows with fewer references pad with None
        transposed = [[r[i] if i < len(r) else None for r in references] for i in range(streams)]
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


def generation_scores(
    spec: GenerationEvalSpec, model: Any, tokenizer: Any, cache_root: Path
) -> dict[str, float]:
    """Answer the reference set's prompts with `model` and score the answers."""
    rows = reference_rows(spec, cache_root)
    answers = generate(model, tokenizer, [p for p, _ in rows], spec.max_new_tokens, spec.batch_size)
    scores = score(spec.metrics, answers, [refs for _, refs in rows])
    log.info("generation metrics on %d reference rows: %s", len(rows), scores)
    return scores
