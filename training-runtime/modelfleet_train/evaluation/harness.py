"""lm-evaluation-harness tasks on the final model (`evaluation.lmEval`).

Tasks are found by name among the harness's own and those defined in `tasksUri` (a directory of the
harness's task YAML files and the data they read). The harness's index of its own few thousand tasks
takes about ten CPU-seconds to build, so it is only built when a task is not defined in `tasksUri`.
The harness runs with the task directory as its working directory, so a task's relative
`data_files` are read from beside its YAML wherever the directory was mounted or downloaded to.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any

from modelfleet_api.evaluation import LmEvalSpec

from modelfleet_train import data

log = logging.getLogger(__name__)

METRIC_PREFIX = "lm-eval"
"""Scores are named `lm-eval/<task>/<metric>` (`<metric>/<filter>` for a filter other than `none`)."""


def tasks_dir(spec: LmEvalSpec, cache_root: Path) -> Path | None:
    """The local directory of `tasksUri` (downloaded from blob storage once), or None."""
    if spec.tasks_uri is None:
        return None
    path = data.materialize(spec.tasks_uri, cache_root)
    if not path.is_dir():
        raise FileNotFoundError(f"evaluation.lmEval.tasksUri: {path} is not a directory")
    return path


def task_manager(spec: LmEvalSpec, directory: Path | None) -> Any:
    """A harness task manager that knows every task of `spec`; fails naming the unknown ones."""
    from lm_eval.tasks import TaskManager

    if directory is not None:
        local = TaskManager(include_path=str(directory), include_defaults=False)
        if not _unknown(spec.tasks, local):
            return local
    manager = TaskManager(include_path=str(directory) if directory else None)
    unknown = _unknown(spec.tasks, manager)
    if unknown:
        where = f" nor in tasksUri ({directory})" if directory else ""
        raise ValueError(
            f"evaluation.lmEval.tasks: {unknown} are not lm-evaluation-harness tasks, groups or tags{where}"
        )
    return manager


def _unknown(tasks: list[str], manager: Any) -> list[str]:
    return [task for task in tasks if not manager.match_tasks([task])]


def metric_name(task: str, key: str) -> str | None:
    """`lm-eval/<task>/<metric>` of a harness result key `<metric>,<filter>`; None for standard errors
    and for what is not a metric (`alias`, `sample_len`: no filter part)."""
    metric, comma, filter_name = key.partition(",")
    if not comma or metric.endswith("_stderr"):
        return None
    suffix = "" if filter_name in ("", "none") else f"/{filter_name}"
    return f"{METRIC_PREFIX}/{task}/{metric}{suffix}"


def scores_of(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The numeric scores of the harness's `results` section, by metric name."""
    scores = {}
    for task, values in results.items():
        for key, value in values.items():
            name = metric_name(task, key)
            if name is not None and isinstance(value, int | float) and math.isfinite(value):
                scores[name] = float(value)
    return scores


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
    scores = scores_of(output["results"] if output else {})
    log.info("lm-evaluation-harness scores: %s", scores)
    return scores
