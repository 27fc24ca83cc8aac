"""lm-evaluation-harness tasks on the final model (`evaluation.lmEval`).

Tasks are found by name among the harness's own and those defined in `tasksUri` (a directory of the
harness's task YAML files and the data they read), and scores named, by ``modelfleet_api.scoring`` (as
a BenchmarkSweep's `quality.lmEval` finds and names them).
The harness runs with the task directory as its working directory, so a task's relative
`data_files` are read from beside its YAML wherever the directory was mounted or downloaded to.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from modelfleet_api import scoring
from modelfleet_api.evaluation import LmEvalSpec

from modelfleet_train import data

log = logging.getLogger(__name__)

FIELD = "evaluation.lmEval"


def tasks_dir(spec: LmEvalSpec, cache_root: Path) -> Path | None:
    """The local directory of `tasksUri` (downloaded from blob storage once), or None."""
    if spec.tasks_uri is None:
        return None
    path = data.materialize(spec.tasks_uri, cache_root)
    if not path.is_dir():
        raise FileNotFoundError(f"{FIELD}.tasksUri: {path} is not a directory")
    return path


def task_manager(spec: LmEvalSpec, directory: Path | None) -> Any:
    """A harness task manager that knows every task of `spec`; fails naming the unknown ones."""
    return scoring.lm_eval_task_manager(spec.tasks, directory, FIELD)


def lm_eval_scores(
    spec: LmEvalSpec, model: Any, tokenizer: Any, cache_root: Path, seed: int
) -> dict[str, float]:
    """Run the tasks on `model` (already on its device) and return their scores."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    directory = tasks_dir(spec, cache_root)
    manager = task_manager(spec, directory)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=spec.batch_size)
    with contextlib.chdir(directory) if directory else contextlib.nullcontext():
        output = simple_evaluate(
            model=lm,
            tasks=list(spec.tasks),
            num_fewshot=spec.num_fewshot,
            limit=spec.limit,
            task_manager=manager,
            apply_chat_template=spec.apply_chat_template,
            log_samples=False,
            bootstrap_iters=0,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    scores = scoring.lm_eval_scores(output["results"] if output else {})
    log.info("lm-evaluation-harness scores: %s", scores)
    return scores
