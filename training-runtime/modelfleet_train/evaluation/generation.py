"""Generation metrics of the final model on a reference set (`evaluation.generation`).

Each prompt is rendered as training rendered prompts (the chat template with a generation prompt when
the tokenizer has one, else BOS + prompt), answered greedily, and the answers are scored against the
references by ``modelfleet_api.scoring`` (BLEU, ROUGE, exact match), as a BenchmarkSweep's
`quality.referenceSet` scores a served model's answers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from modelfleet_api import scoring
from modelfleet_api.evaluation import GenerationEvalSpec
from modelfleet_api.scoring import ReferenceRow

from modelfleet_train import data

log = logging.getLogger(__name__)

FIELD = "evaluation.generation"


def reference_rows(spec: GenerationEvalSpec, cache_root: Path) -> list[ReferenceRow]:
    """(prompt, references) of the reference set's rows (downloaded first from blob storage)."""
    return scoring.reference_rows(data.materialize(spec.uri, cache_root), spec, FIELD)


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


def generation_scores(
    spec: GenerationEvalSpec, model: Any, tokenizer: Any, cache_root: Path
) -> dict[str, float]:
    """Answer the reference set's prompts with `model` and score the answers."""
    rows = reference_rows(spec, cache_root)
    answers = generate(model, tokenizer, [p for p, _ in rows], spec.max_new_tokens, spec.batch_size)
    scores = scoring.score(spec.metrics, answers, [refs for _, refs in rows])
    log.info("generation metrics on %d reference rows: %s", len(rows), scores)
    return scores
