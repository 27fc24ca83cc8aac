"""Progress mirror: rank 0's ``TrainingProgress`` JSON in the progress ConfigMap -> status.progress."""

from __future__ import annotations

import logging
from typing import Any

from modelfleet_api import contract
from modelfleet_api.runtime_config import TrainingProgress
from pydantic import ValidationError

logger = logging.getLogger(__name__)


def read_progress(config_map: dict[str, Any] | None) -> TrainingProgress | None:
    """The published progress; None when nothing (valid) was published yet."""
    text = ((config_map or {}).get("data") or {}).get(contract.PROGRESS_KEY)
    if not text:
        return None
    try:
        return TrainingProgress.model_validate_json(text)
    except ValidationError as error:
        name = (config_map or {}).get("metadata", {}).get("name")
        logger.warning("ignoring unreadable progress in ConfigMap %s: %s", name, error)
        return None


def steps_column(progress: TrainingProgress) -> str:
    """`step/total` (or just `step`) for the Progress column of ``kubectl get``."""
    if progress.total_steps:
        return f"{progress.step}/{progress.total_steps}"
    return str(progress.step)
