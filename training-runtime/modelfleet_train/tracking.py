"""Experiment tracking on rank 0: MLflow, Weights & Biases and CometML, each optional.

Like every other report, tracking never stops training: a tracker that cannot start (server down,
API key missing or refused) is logged and dropped, and a failure while logging is logged and
skipped. Step metrics are handed to each library's own background sender (MLflow's asynchronous
queue, W&B's core service, Comet's streamer), so their retries run beside the loop, not inside it.

Every tracker gets the same parameters (the runtime config without `job` and `tracking`) and the same
per-step values. A W&B run and a Comet experiment are keyed by the TrainingJob's UID, so the attempts
of a gang restart continue one run; MLflow gets one run per attempt. W&B's charts are drawn against
`train/step` (W&B's own step counter must only grow, and a resume repeats the steps after its
checkpoint). Offline mode writes under the output directory, which is uploaded with the model.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from modelfleet_api import contract
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import TrackerMode, TrackerSpec

log = logging.getLogger(__name__)

WANDB_DIR = "wandb"
"""Under the output directory: W&B's run directories (offline runs to `wandb sync` live there)."""
COMET_DIR = "comet"
"""Under the output directory: Comet's offline experiment archives (`comet upload`)."""
STEP_METRIC = "train/step"
TRAIN_SECTION = "train"
EVAL_SECTION = "eval"
"""Held-out figures and the final model's scores: `eval_<name>` in MLflow and Comet, `eval/<name>` in
W&B (training metrics keep their plain names there, and `train/<name>` in W&B)."""


def section_name(section: str, name: str) -> str:
    """A metric's name in MLflow and Comet: plain for training, `<section>_<name>` otherwise."""
    return name if section == TRAIN_SECTION else f"{section}_{name}"


class RunStatus:
    FINISHED = "FINISHED"
    KILLED = "KILLED"
    """Stopped by SIGTERM after a checkpoint (an eviction): the next attempt continues it."""
    FAILED = "FAILED"


class Tracker(Protocol):
    name: str

    def log_step(self, step: int, values: dict[str, float], section: str = TRAIN_SECTION) -> None: ...

    def close(self, status: str) -> None: ...


def tracked_params(config: TrainingRuntimeConfig) -> dict[str, Any]:
    """What every tracker records as the run's parameters: the config less identity and tracking."""
    return {k: v for k, v in config.to_wire().items() if k not in {"tracking", "job"}}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_key(config: TrainingRuntimeConfig) -> str:
    """32 hex characters naming this TrainingJob's run in W&B and Comet (both accept it as an id), the
    same on every attempt; from the UID, so a job re-created under the same name starts a new run."""
    identity = config.job.uid or f"{config.job.namespace}/{config.job.name}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class MlflowTracker:
    name = "mlflow"

    def __init__(self, config: TrainingRuntimeConfig, uri: str) -> None:
        import mlflow

        self._mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(config.tracking.experiment or config.job.namespace)
        mlflow.start_run(run_name=config.job.name)
        mlflow.log_params({k: str(v)[:500] for k, v in flatten(tracked_params(config)).items()})

    def log_step(self, step: int, values: dict[str, float], section: str = TRAIN_SECTION) -> None:
        named = {section_name(section, k): v for k, v in values.items()}
        self._mlflow.log_metrics(named, step=step, synchronous=False)

    def close(self, status: str) -> None:
        self._mlflow.end_run(status=status)  # flushes the queued metrics first


class WandbTracker:
    name = "wandb"

    def __init__(self, config: TrainingRuntimeConfig, spec: TrackerSpec, output: Path) -> None:
        if spec.mode == TrackerMode.ONLINE and not os.environ.get(contract.ENV_WANDB_API_KEY):
            raise RuntimeError(f"tracking.wandb.apiKeySecret: {contract.ENV_WANDB_API_KEY} is not set")
        import wandb

        (output / WANDB_DIR).mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(base_url=spec.url) if spec.url else None
        self._run = wandb.init(
            project=spec.project,
            entity=spec.workspace,
            name=config.job.name,
            id=run_key(config),
            resume="allow",
            dir=str(output),
            mode=spec.mode.value,
            config=tracked_params(config),
            tags=[config.job.namespace],
            settings=settings,
        )
        self._run.define_metric(STEP_METRIC)
        self._run.define_metric("*", step_metric=STEP_METRIC)

    def log_step(self, step: int, values: dict[str, float], section: str = TRAIN_SECTION) -> None:
        self._run.log({STEP_METRIC: step, **{f"{section}/{k}": v for k, v in values.items()}})

    def close(self, status: str) -> None:
        if status == RunStatus.KILLED:
            self._run.mark_preempting()
        self._run.finish(exit_code=0 if status == RunStatus.FINISHED else 1)


class CometTracker:
    name = "comet"

    def __init__(self, config: TrainingRuntimeConfig, spec: TrackerSpec, output: Path) -> None:
        online = spec.mode == TrackerMode.ONLINE
        if online and not os.environ.get(contract.ENV_COMET_API_KEY):
            raise RuntimeError(f"tracking.comet.apiKeySecret: {contract.ENV_COMET_API_KEY} is not set")
        if spec.url:  # read by comet_ml when it builds its config
            os.environ["COMET_URL_OVERRIDE"] = spec.url
        import comet_ml

        self._experiment = comet_ml.start(
            project_name=spec.project,
            workspace=spec.workspace,
            experiment_key=run_key(config),
            mode="get_or_create",
            online=online,
            experiment_config=comet_ml.ExperimentConfig(
                name=config.job.name,
                tags=[config.job.namespace],
                offline_directory=str(output / COMET_DIR),
                # the runtime logs what matters itself; Comet's auto-logging would add the process's
                # stdout, argv, environment and hardware, and hook into the frameworks
                # False, not None: Comet reads None as "not given" and falls back to its default
                # ("native"); its annotation says str, its code takes False as off
                auto_output_logging=False,  # type: ignore[arg-type]
                auto_metric_logging=False,
                auto_param_logging=False,
                log_code=False,
                log_git_metadata=False,
                log_env_details=False,
                parse_args=False,
                display_summary_level=0,
            ),
        )
        self._experiment.log_parameters(flatten(tracked_params(config)))

    def log_step(self, step: int, values: dict[str, float], section: str = TRAIN_SECTION) -> None:
        self._experiment.log_metrics({section_name(section, k): v for k, v in values.items()}, step=step)

    def close(self, status: str) -> None:
        self._experiment.log_other("status", status)
        self._experiment.end()  # offline: writes the archive


class Trackers:
    """The trackers the config asks for that started; one call logs to all of them."""

    def __init__(self, trackers: list[Tracker], offline: list[Path] | None = None) -> None:
        self.trackers = trackers
        self._offline = offline or []

    def offline_dirs(self) -> list[Path]:
        """Where offline trackers wrote their runs (existing directories only)."""
        return [d for d in self._offline if d.is_dir()]

    @classmethod
    def start(cls, config: TrainingRuntimeConfig, output: Path) -> Trackers:
        tracking = config.tracking
        wanted: list[tuple[str, Callable[[], Tracker]]] = []
        if tracking.mlflow_uri:
            wanted.append(("mlflow", partial(MlflowTracker, config, tracking.mlflow_uri)))
        if tracking.wandb:
            wanted.append(("wandb", partial(WandbTracker, config, tracking.wandb, output)))
        if tracking.comet:
            wanted.append(("comet", partial(CometTracker, config, tracking.comet, output)))
        started: list[Tracker] = []
        for name, make in wanted:
            try:
                started.append(make())
            except Exception:
                log.exception("%s tracking disabled (training continues)", name)
        offline = [
            output / directory
            for spec, directory in ((tracking.wandb, WANDB_DIR), (tracking.comet, COMET_DIR))
            if spec is not None and spec.mode == TrackerMode.OFFLINE
        ]
        return cls(started, offline)

    def log_step(self, step: int, values: dict[str, float | None], section: str = TRAIN_SECTION) -> None:
        present = {k: v for k, v in values.items() if v is not None}
        for tracker in self.trackers:
            try:
                tracker.log_step(step, present, section)
            except Exception as error:
                log.warning("%s logging failed: %s", tracker.name, error)

    def close(self, status: str) -> None:
        for tracker in self.trackers:
            try:
                tracker.close(status)
            except Exception as error:
                log.warning("ending the %s run failed: %s", tracker.name, error)
