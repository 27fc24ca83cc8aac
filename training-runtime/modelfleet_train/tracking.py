"""Optional MLflow tracking of params and per-step metrics (rank 0, when tracking.mlflowUri is set).

Like every other report, tracking never stops training: a tracking server that cannot be reached
at the start disables tracking, and step metrics go through MLflow's asynchronous logging queue, so
its HTTP retries (minutes, by default, against a server that is down) run beside the loop instead
of inside it.
"""

from __future__ import annotations

import logging
from typing import Any

from modelfleet_api.runtime_config import TrainingRuntimeConfig

log = logging.getLogger(__name__)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class MlflowTracker:
    def __init__(self, config: TrainingRuntimeConfig) -> None:
        import mlflow

        self._mlflow = mlflow
        mlflow.set_tracking_uri(config.tracking.mlflow_uri)
        mlflow.set_experiment(config.tracking.experiment or config.job.namespace)
        mlflow.start_run(run_name=config.job.name)
        params = _flatten({k: v for k, v in config.to_wire().items() if k not in {"tracking", "job"}})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    @classmethod
    def start(cls, config: TrainingRuntimeConfig) -> MlflowTracker | None:
        """A tracker with its run started, or None (logged) when the tracking server refuses it."""
        try:
            return cls(config)
        except Exception:
            log.exception("mlflow tracking disabled (training continues)")
            return None

    def log_step(self, step: int, values: dict[str, float | None]) -> None:
        try:
            self._mlflow.log_metrics(
                {k: v for k, v in values.items() if v is not None}, step=step, synchronous=False
            )
        except Exception as error:
            log.warning("mlflow logging failed: %s", error)

    def close(self, status: str) -> None:
        """End the run, which first flushes the queued metrics."""
        try:
            self._mlflow.end_run(status=status)
        except Exception as error:
            log.warning("ending the mlflow run failed: %s", error)
