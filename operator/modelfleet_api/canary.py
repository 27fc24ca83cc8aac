"""Canary promotion gated by benchmarks (``ModelDeployment.spec.canary.analysis``).

The operator raises the canary's share of traffic stage by stage (for example 5 % -> 25 % -> 100 %).
At each stage it measures the stable and the canary track with the same benchmark (a BenchmarkSweep
it owns, one per track), waits at least the stage's duration, then promotes to the next stage when
the canary meets the SLOs and is no worse than stable by more than the allowed margin at every load
level, or rolls back (canary weight 0, its replicas scaled to 0, a condition and a Warning event
naming the figures that decided). After the last stage the canary is Promoted: it keeps that weight
until the spec makes it the stable track (manual promotion: move `canary.model` to `model` and remove
`canary`, which also works at any time without analysis).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.sweep_template import SweepTemplate

MAX_STAGES = 10
MAX_STAGE_SECONDS = 7 * 86_400


class AnalysisStage(ApiModel):
    weight: int = Field(ge=1, le=100)
    """Percent of requests the canary gets during this stage."""

    duration_seconds: int = Field(default=600, ge=0, le=MAX_STAGE_SECONDS)
    """Least time the canary serves at this weight before the stage is decided (the analysis benchmark
    also has to finish)."""


class CanaryAnalysis(ApiModel):
    """Benchmark-gated stages of traffic for the canary."""

    benchmark: SweepTemplate
    """How each track is measured at every stage (a BenchmarkSweep without targets): the same workload,
    load levels and SLOs for both."""

    stages: list[AnalysisStage] = Field(min_length=1, max_length=MAX_STAGES)
    """Traffic weights in increasing order, each with its least duration, e.g. 5, 25, 100."""

    max_regression_percent: float = Field(default=10.0, ge=0.0, le=100.0)
    """How much worse than stable the canary may be at a load level: output tokens per second at most
    this much lower, the p95 of each SLO metric at most this much higher, and with `benchmark.quality`
    each quality score both tracks measured at most this much lower (the same margin)."""

    cel_rules = (
        CelRule(
            rule=" && ".join(
                f"(size(self.stages) < {i + 2} || self.stages[{i}].weight < self.stages[{i + 1}].weight)"
                for i in range(MAX_STAGES - 1)
            ),
            message="stages: weights must increase from one stage to the next, e.g. 5, 25, 100",
            field_path=".stages",
        ),
        CelRule(
            rule="has(self.benchmark.slos.ttftP95Ms) || has(self.benchmark.slos.tpotP95Ms) || "
            "has(self.benchmark.slos.e2eP95Ms)",
            message="benchmark.slos: a canary is promoted when it meets the SLOs: set at least one",
            field_path=".benchmark.slos",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.benchmark.load.search)",
            message="benchmark.load.search is not supported in a canary analysis: both tracks are compared "
            "at the same listed load levels",
            field_path=".benchmark.load.search",
            reason="FieldValueForbidden",
        ),
    )


class AnalysisPhase(StrEnum):
    PROGRESSING = "Progressing"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


class StageResult(ApiModel):
    """How one stage was decided."""

    stage: int = Field(ge=0)
    """Index in `spec.canary.analysis.stages`."""

    weight: int = Field(ge=0, le=100)
    """The canary's weight during the stage."""

    promoted: bool
    """Whether the canary passed it."""

    message: str
    """The figures that decided it."""

    decided_at: datetime
    """When."""


class CanaryAnalysisStatus(ApiModel):
    """Where the canary's analysis is."""

    canary: str
    """Fingerprint of the canary track and the analysis it is judged by: a new canary (another model,
    TrainingJob, engine or image) or a changed analysis starts over from the first stage."""

    phase: AnalysisPhase = AnalysisPhase.PROGRESSING
    """`Progressing`, `Promoted` (every stage passed) or `RolledBack`."""

    stage: int = Field(default=0, ge=0)
    """The stage under way (or the last one decided)."""

    weight: int = Field(default=0, ge=0, le=100)
    """Percent of requests the canary gets now."""

    stage_started_at: datetime | None = None
    """When the canary began serving at this stage's weight (its duration counts from here)."""

    sweeps: list[str] = Field(default_factory=list)
    """The BenchmarkSweeps measuring the stable and the canary track at this stage."""

    stages: list[StageResult] = Field(default_factory=list)
    """Every stage decided so far."""
