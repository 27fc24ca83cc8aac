"""Config files the operator renders and the runtimes read (the same models on both sides)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import Field

from modelfleet_api.base import ApiModel
from modelfleet_api.evaluation import EvaluationSpec, EvaluationStatus
from modelfleet_api.lineage import TrainingResult
from modelfleet_api.training import (
    CheckpointSpec,
    DatasetSpec,
    Hyperparameters,
    MethodSpec,
    OutputSpec,
    Precision,
    StrategySpec,
    TrackingSpec,
    TrainingModelSource,
)


class JobIdentity(ApiModel):
    name: str
    """TrainingJob name."""
    namespace: str
    """TrainingJob namespace."""
    uid: str | None = None
    """TrainingJob UID, so a job re-created under the same name does not resume a stranger's state."""


class Topology(ApiModel):
    nodes: int = Field(ge=1)
    """Worker pods (one per node)."""
    gpus_per_node: int = Field(ge=1)
    """Processes per node (one per GPU; on CPU, processes)."""


class TrainingRuntimeConfig(ApiModel):
    """Everything a training worker needs, resolved by the operator from the TrainingJob spec."""

    job: JobIdentity
    model: TrainingModelSource | None = None
    dataset: DatasetSpec
    method: MethodSpec = Field(default_factory=MethodSpec)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    precision: Precision = Precision.BF16
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    output: OutputSpec
    evaluation: EvaluationSpec | None = None
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    topology: Topology

    @property
    def base_model(self) -> TrainingModelSource:
        """The model the job trains: every method but `tokenizer` has one (the runtime's config check
        refuses a config without it before this is read)."""
        if self.model is None:
            raise ValueError(f"model: method {self.method.type} needs a model")
        return self.model

    @classmethod
    def from_yaml(cls, text: str) -> TrainingRuntimeConfig:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def load(cls, path: str | Path) -> TrainingRuntimeConfig:
        return cls.from_yaml(Path(path).read_text())


class TrainingProgress(ApiModel):
    """What rank 0 publishes (progress ConfigMap) and the operator mirrors into the status."""

    step: int = Field(ge=0)
    """Optimizer steps done."""
    total_steps: int | None = Field(default=None, ge=0)
    """Steps the run will take."""
    epoch: float | None = None
    """Fractional epoch."""
    loss: float | None = None
    """Latest training loss."""
    learning_rate: float | None = None
    """Current learning rate."""
    tokens_per_second: float | None = None
    """Training throughput over all ranks."""
    last_checkpoint: str | None = None
    """URI of the latest complete checkpoint."""
    last_checkpoint_step: int | None = None
    """Step of that checkpoint."""
    evaluation: EvaluationStatus | None = None
    """Held-out figures: the latest and the best, with their steps (`spec.evaluation`)."""
    step_seconds: float | None = Field(default=None, ge=0)
    """Wall time of the latest optimizer step."""
    checkpoint_seconds: float | None = Field(default=None, ge=0)
    """Wall time of the latest checkpoint save (all ranks, until it was complete). The operator sizes
    the next attempt's termination grace period from it and `stepSeconds`."""
    updated_at: datetime
    """When rank 0 wrote this (the operator's stall detection compares it with now)."""
    result: TrainingResult | None = None
    """What training wrote, reported once by rank 0 after the final model is saved (and merged); the
    operator copies it into `status.output` when the job Succeeded."""
