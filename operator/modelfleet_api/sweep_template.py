"""How a deployment is measured, without the deployments: the part of a BenchmarkSweep's spec a canary
analysis reuses (``ModelDeployment.spec.canary.analysis.benchmark``), and that ``BenchmarkSweepSpec``
extends with its targets."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.benchmark import (
    QUALITY_PROTOCOL_RULE,
    WORKLOAD_LOAD_RULES,
    LoadPattern,
    Protocol,
    Slos,
    Workload,
    quality_problem,
    workload_load_problem,
)
from modelfleet_api.common import PositiveQuantity, ServiceAccountName
from modelfleet_api.quality import QualitySpec
from modelfleet_api.storage import TokenizerUri

SEARCH_NEEDS_SLOS = CelRule(
    rule=(
        "!has(self.load.search) || (has(self.slos) && (has(self.slos.ttftP95Ms) || "
        "has(self.slos.tpotP95Ms) || has(self.slos.e2eP95Ms)))"
    ),
    message="search finds the highest load meeting the SLOs: set at least one of slos",
    field_path=".load.search",
    reason="FieldValueRequired",
)


class ClientResources(ApiModel):
    """What each point's benchmark pod (one load-generator process) asks of its node."""

    cpu: PositiveQuantity = "1"
    """CPU request (no limit: a throttled client would measure its own stalls, not the server)."""

    memory: PositiveQuantity = "2Gi"
    """Memory request and limit (its connection pool and the record of every request)."""


class SweepTemplate(ApiModel):
    """How to measure a deployment: the requests, the load levels and the objectives (a sweep without
    its targets; a canary analysis runs it against the stable and the canary track)."""

    workload: Workload
    """Requests to send: prompts from a file or synthetic ones."""

    load: LoadPattern
    """Load levels (concurrency or request rates), and the requests, duration and warm-up of each point."""

    slos: Slos = Field(default_factory=Slos)
    """Objectives that define goodput and the best point."""

    quality: QualitySpec | None = None
    """Score each target's answers too: each point's pod, after its load phase, scores the target
    through the same endpoint (a reference set, lm-eval tasks, or both; those requests are not in the
    latency figures), and reports the scores in `status.points[].quality`. With `floors`, the best point
    and a canary's promotion also need the scores at or above them. Needs an OpenAI protocol."""

    protocol: Protocol | None = None
    """Wire protocol; unset: `kserve-v2-http` for Triton targets, `openai-chat` for the others."""

    tokenizer: TokenizerUri | None = None
    """Tokenizer for synthetic prompts and token counting; unset: the target's model."""

    image: str | None = Field(default=None, max_length=1024)
    """Benchmark client image; unset: the operator's default."""

    client_resources: ClientResources = Field(default_factory=ClientResources)
    """CPU and memory of each point's benchmark pod. A point whose pod no node has room for waits
    (the sweep's `PointsScheduled` condition says so)."""

    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the benchmark Jobs' pods run as, e.g. a workload-identity one federated with the
    runtime identity to upload to `sinks.blobUri`; it must exist in the namespace, or the Jobs cannot
    create their pods. The pods get the label `azure.workload.identity/use: "true"`. Unset: the
    operator's runtime service account (chart value `azure.workloadIdentity.runtimeServiceAccount`),
    else the namespace's `default`. Deployments expanded from `targets[].template` take the
    template's own `serviceAccountName`."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        SEARCH_NEEDS_SLOS,
        *WORKLOAD_LOAD_RULES,
        QUALITY_PROTOCOL_RULE,
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problem = workload_load_problem(self.workload, self.load.arrival, self.protocol)
        if problem is not None:
            raise ValueError(problem)
        if self.protocol is not None and (problem := quality_problem(self.quality, self.protocol)):
            raise ValueError(problem)
        if self.load.search is not None and not any(
            getattr(self.slos, name) is not None for name in Slos.model_fields
        ):
            raise ValueError(
                "load.search: search finds the highest load meeting the SLOs: set at least one of slos"
            )
        return self
