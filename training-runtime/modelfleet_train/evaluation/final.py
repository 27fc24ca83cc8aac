"""Scores of the final model (`evaluation.generation`, `evaluation.lmEval`), run by rank 0 alone after
the output is written, on the model as it was written: a full model, or an adapter merged into its
base (the merged model `output.mergeAdapter` wrote, else merged in memory). What these evaluations
read is checked before training starts, so a wrong task name or column fails the job at once, not
after hours of training."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from modelfleet_api.lineage import MERGED_SUBDIR
from modelfleet_api.runtime_config import TrainingRuntimeConfig

from modelfleet_train.evaluation import generation, harness
from modelfleet_train.merge import merged_model
from modelfleet_train.methods import uses_adapters

log = logging.getLogger(__name__)


def scores_final_model(config: TrainingRuntimeConfig) -> bool:
    evaluation = config.evaluation
    return evaluation is not None and (evaluation.generation is not None or evaluation.lm_eval is not None)


def check_ready(config: TrainingRuntimeConfig, cache_root: Path) -> None:
    """Read the reference set and find the lm-eval tasks now; raises naming the field on a problem."""
    evaluation = config.evaluation
    if evaluation is None:
        return
    if evaluation.generation is not None:
        generation.reference_rows(evaluation.generation, cache_root)
    if evaluation.lm_eval is not None:
        harness.task_manager(evaluation.lm_eval, harness.tasks_dir(evaluation.lm_eval, cache_root))


def written_model(
    config: TrainingRuntimeConfig, model_dir: Path, tokenizer: Any, device: torch.device, dtype: torch.dtype
) -> Any:
    """The model as the job wrote it to `model_dir`, on `device`, in eval mode."""
    from transformers import AutoModelForCausalLM

    model: Any
    if not uses_adapters(config):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    elif (model_dir / MERGED_SUBDIR / "config.json").exists():
        model = AutoModelForCausalLM.from_pretrained(model_dir / MERGED_SUBDIR, dtype=dtype)
    else:
        model = merged_model(config, model_dir, tokenizer).to(dtype)
    return model.to(device).eval()


def final_scores(
    config: TrainingRuntimeConfig,
    model_dir: Path,
    tokenizer: Any,
    device: torch.device,
    dtype: torch.dtype,
    cache_root: Path,
) -> dict[str, float]:
    """Every score `evaluation` asks of the final model, by name."""
    evaluation = config.evaluation
    if evaluation is None or not scores_final_model(config):
        return {}
    model = written_model(config, model_dir, tokenizer, device, dtype)
    scores: dict[str, float] = {}
    if evaluation.generation is not None:
        scores |= generation.generation_scores(evaluation.generation, model, tokenizer, cache_root)
    if evaluation.lm_eval is not None:
        scores |= harness.lm_eval_scores(
            evaluation.lm_eval, model, tokenizer, cache_root, config.hyperparameters.seed
        )
    return scores
