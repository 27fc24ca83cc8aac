"""Optional MLflow tracking of params and per-step metrics (rank 0, when tracking.mlflowUri is set)."""

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

    def log_step(self, step: int, values: dict[str, float | None]) -> None:
        try:
            self._mlflow.log_metrics({k: v for k, v in values.items() if v is not None}, step=step)
        except Exception as error:
            log.warning("mlflow logging failed: %s", error)

    def close(self, status: str) -> None:
        self._mlflow.end_run(status=status)
