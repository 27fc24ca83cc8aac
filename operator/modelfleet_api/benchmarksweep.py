"""BenchmarkSweep: measure latency and throughput of one or more deployments over a grid of load levels.

Targets are existing ModelDeployments (``deploymentRef``) or inline ``template``s expanded over
``axes`` (engine x model x tensorParallelSize x quantization) into ModelDeployments the sweep owns.
Every target is measured at every load level of ``load`` (and every ``tokenLengths`` entry); each
(target, lengths, load level) is one point, run by one benchmark Job with a
``benchmark.BenchmarkRuntimeConfig``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.benchmark import (
    BLOB_URI_PATTERN,
    RESULTS_URI_MAX_LENGTH,
    LoadPattern,
    Protocol,
    Sinks,
    Slos,
    Workload,
)
from modelfleet_api.common import CONDITIONS_SCHEMA_EXTRA, DNS_LABEL_PATTERN, Condition, ServiceAccountName
from modelfleet_api.constants import BenchmarkSweepPhase, PointPhase
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.resource import (
    AGE_COLUMN,
    DNS_LABEL_MAX,
    CustomResource,
    PrinterColumn,
    ResourceNames,
    name_length_rule,
)
from modelfleet_api.serving import EngineType, Quantization

MAX_TARGETS = 16
MAX_AXIS_VALUES = 8
SINK_ERROR_MAX_LENGTH = 256
"""Longest sink error a point reports (the termination message it travels in holds 4096 bytes)."""
SINK_ERRORS_MAX = 3
"""One error per per-point sink at most (blob, pushgateway, mlflow)."""

# An axis value must be able to say "no quantization"; a null inside a list is not structural, so
# the axis gets its own enum: the engine quantizations plus `none`.
QuantizationChoice = StrEnum(  # type: ignore[misc]
    "QuantizationChoice", {"NONE": "none", **{q.name: q.value for q in Quantization}}
)


class TemplateAxes(ApiModel):
    """Values that replace the template's, one deployment per combination (the cross product)."""

    engine: list[EngineType] = Field(default_factory=list, max_length=MAX_AXIS_VALUES)
    """Engines (`engine.type`)."""

    model: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=MAX_AXIS_VALUES
    )
    """Model URIs (`model.uri`)."""

    tensor_parallel_size: list[Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=list, max_length=MAX_AXIS_VALUES
    )
    """Tensor-parallel sizes (`engine.settings.tensorParallelSize`; at most `resources.gpusPerReplica`)."""

    quantization: list[QuantizationChoice] = Field(default_factory=list, max_length=MAX_AXIS_VALUES)
    """Quantizations (`engine.settings.quantization`; `none` for unquantized)."""


class SweepTarget(ApiModel):
    """One deployment to measure, or a template that expands into several."""

    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL_PATTERN)
    """Label of the target in results; expanded deployments are named `<sweep>-<name>-<index>`."""

    deployment_ref: str | None = Field(default=None, min_length=1, max_length=253)
    """Name of an existing ModelDeployment in the sweep's namespace."""

    template: ModelDeploymentSpec | None = None
    """Spec of ModelDeployments the sweep creates (and deletes when done)."""

    axes: TemplateAxes | None = None
    """Values to expand the template over (template only)."""

    cel_rules = (
        CelRule(
            rule="has(self.deploymentRef) != has(self.template)",
            message="set exactly one of deploymentRef and template",
            field_path=".deploymentRef",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="has(self.template) || !has(self.axes)",
            message="axes expand a template; they need template",
            field_path=".axes",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule=(
                "!has(self.template) || !has(self.axes) || !has(self.axes.tensorParallelSize) || "
                "self.axes.tensorParallelSize.all(tp, tp <= self.template.resources.gpusPerReplica)"
            ),
            message="axes.tensorParallelSize values cannot exceed template.resources.gpusPerReplica",
            field_path=".axes.tensorParallelSize",
        ),
    )


class TokenLengths(ApiModel):
    input_tokens: int = Field(ge=1, le=1_048_576)
    """Prompt length in tokens."""

    output_tokens: int = Field(ge=1, le=1_048_576)
    """Requested output length in tokens."""


class SweepSinks(Sinks):
    """Where results go besides the status (every sink is optional)."""

    config_map: bool = True
    """Write every point's full results (JSON) into a ConfigMap `<sweep>-results`."""

    blob_uri: str | None = Field(default=None, max_length=1024, pattern=BLOB_URI_PATTERN)
    """Azure Blob prefix for the result files of every point: point N's `results.json` and
    `requests.csv` go under `<blobUri>/<namespace>/<sweep>/point-N/` (its `status.points[].resultsUri`).
    `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]`, or `az://CONTAINER[/PATH]` when the
    benchmark pods have `AZURE_STORAGE_ACCOUNT`. The benchmark pods upload with workload identity."""


class BenchmarkSweepSpec(ApiModel):
    """What to measure, how hard, and where results go."""

    targets: list[SweepTarget] = Field(min_length=1, max_length=MAX_TARGETS)
    """Deployments to measure (names must be unique)."""

    workload: Workload
    """Requests to send: prompts from a file or synthetic ones."""

    load: LoadPattern
    """Load levels (concurrency or request rates), and the requests, duration and warm-up of each point."""

    token_lengths: list[TokenLengths] = Field(default_factory=list, max_length=MAX_AXIS_VALUES)
    """Extra axis: each entry replaces the synthetic workload's lengths with these constants."""

    slos: Slos = Field(default_factory=Slos)
    """Objectives that define goodput and the best point per SLO."""

    protocol: Protocol | None = None
    """Wire protocol; unset: `kserve-v2-http` for Triton targets, `openai-chat` for the others."""

    tokenizer: str | None = Field(default=None, max_length=1024)
    """Tokenizer for synthetic prompts and token counting; unset: the target's model."""

    max_parallel_points: int = Field(default=1, ge=1, le=64)
    """Points measured at the same time (on different targets; one target is measured one point at a
    time so points do not disturb each other)."""

    image: str | None = Field(default=None, max_length=1024)
    """Benchmark client image; unset: the operator's default."""

    sinks: SweepSinks = Field(default_factory=SweepSinks)
    """Result exports."""

    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the benchmark Jobs' pods run as, e.g. a workload-identity one federated with the
    runtime identity to upload to `sinks.blobUri`; it must exist in the namespace, or the Jobs cannot
    create their pods. The pods get the label `azure.workload.identity/use: "true"`. Unset: the
    operator's runtime service account (chart value `azure.workloadIdentity.runtimeServiceAccount`),
    else the namespace's `default`. Deployments expanded from `targets[].template` take the
    template's own `serviceAccountName`."""

    cel_rules = (
        CelRule(
            rule="self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
            message="target names must be unique",
            field_path=".targets",
        ),
        CelRule(
            rule="!has(self.tokenLengths) || size(self.tokenLengths) == 0 || has(self.workload.synthetic)",
            message="tokenLengths replace synthetic lengths: it needs workload.synthetic",
            field_path=".tokenLengths",
        ),
    )


class PointMetrics(ApiModel):
    """The key figures of one measured point. A benchmark Job writes them as compact JSON into its
    container's termination message (`modelfleet-bench run`), which is how the operator reads them."""

    ttft_p95_ms: float | None = None
    """95th percentile time to first token, milliseconds."""

    tpot_p95_ms: float | None = None
    """95th percentile time per output token, milliseconds."""

    e2e_p95_ms: float | None = Field(default=None, alias="e2eP95Ms")
    """95th percentile end-to-end latency, milliseconds."""

    output_tokens_per_second: float | None = None
    """Output tokens per second over all requests."""

    requests_per_second: float | None = None
    """Completed requests per second."""

    goodput: float | None = None
    """Requests per second that met every SLO."""

    error_rate: float | None = None
    """Fraction of requests that failed."""

    meets_slos: bool | None = None
    """Whether the p95 of every SLO metric is within its threshold."""

    results_uri: str | None = Field(default=None, max_length=RESULTS_URI_MAX_LENGTH)
    """Blob prefix the point's result files were uploaded under (`sinks.blobUri`); unset when there is
    no blob sink or the upload failed."""

    sink_errors: list[Annotated[str, Field(max_length=SINK_ERROR_MAX_LENGTH)]] | None = Field(
        default=None, max_length=SINK_ERRORS_MAX
    )
    """Sinks that failed for this point, each `SINK: error` (cut short); the figures are recorded all
    the same."""


class PointStatus(PointMetrics):
    """One measured (target, lengths, load level) point."""

    index: int = Field(ge=0)
    """Position in the sweep (label `modelfleet.io/sweep-point` of its Job)."""

    target: str
    """Target name (and for expanded templates, the axis values)."""

    deployment: str | None = None
    """ModelDeployment measured."""

    load: str
    """Load level, e.g. `concurrency=8` or `rate=4/s (poisson)`."""

    input_tokens: int | None = None
    """Prompt length of this point (with `tokenLengths`)."""

    output_tokens: int | None = None
    """Output length of this point (with `tokenLengths`)."""

    phase: PointPhase = PointPhase.PENDING
    """Pending, Running, Succeeded or Failed."""

    reason: str | None = None
    """Why the point failed (CamelCase)."""

    message: str | None = None
    """Details of a failure."""


class BestPoint(ApiModel):
    slo: str
    """`all` (every SLO) or the SLO this point is best for (`ttftP95Ms`, `tpotP95Ms`, `e2eP95Ms`);
    `throughput` for the highest throughput regardless of SLOs."""

    point: int = Field(ge=0)
    """Index of the point."""

    target: str
    """Target of the point."""

    load: str
    """Load level of the point."""

    output_tokens_per_second: float
    """Its output tokens per second."""

    goodput: float | None = None
    """Its goodput."""


class TargetStatus(ApiModel):
    name: str
    """Target name, with the axis values for expanded templates."""

    deployment: str
    """ModelDeployment measured."""

    ready: bool = False
    """Whether the deployment is Ready."""

    waiting_since: datetime | None = None
    """When the sweep started waiting for the deployment to become Ready (its ready timeout counts
    from here)."""


class BenchmarkSweepStatus(ApiModel):
    """What the operator observed; written only by the operator."""

    phase: BenchmarkSweepPhase = BenchmarkSweepPhase.PENDING
    """Summary for humans: Pending, Deploying, Running, Succeeded or Failed."""

    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_SCHEMA_EXTRA)
    """Latest observations (TargetsReady, Complete, Failed, SinksWritten), one per type."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` this status was computed from."""

    targets: list[TargetStatus] = Field(default_factory=list)
    """Resolved targets (templates expanded)."""

    points_done: int = Field(default=0, ge=0)
    """Points finished (succeeded or failed)."""

    points_total: int = Field(default=0, ge=0)
    """Points in the sweep."""

    progress: str | None = None
    """`done/total` points, for `kubectl get`."""

    points: list[PointStatus] = Field(default_factory=list)
    """Every point with its summary metrics."""

    best_per_slo: list[BestPoint] = Field(default_factory=list)
    """Highest-throughput point meeting all SLOs (`all`) and each single SLO."""

    best_throughput: BestPoint | None = None
    """Highest output-token throughput of any point, SLOs aside."""

    results_config_map: str | None = None
    """ConfigMap with the full results (with `sinks.configMap`)."""

    completion_time: datetime | None = None
    """When the last point ended."""


class BenchmarkSweep(CustomResource):
    """A grid of benchmark points over deployments and load levels."""

    cel_rules = (
        name_length_rule(
            DNS_LABEL_MAX,
            "every child carries the name as a label value (modelfleet.io/benchmarksweep), at most "
            f"{DNS_LABEL_MAX} characters",
        ),
    )

    names = ResourceNames(
        kind="BenchmarkSweep",
        plural="benchmarksweeps",
        short_names=("bs",),
        printer_columns=(
            PrinterColumn(name="Phase", json_path=".status.phase", type="string", description="Phase."),
            PrinterColumn(
                name="Points", json_path=".status.progress", type="string", description="Done/total points."
            ),
            PrinterColumn(
                name="Best throughput",
                json_path=".status.bestThroughput.outputTokensPerSecond",
                type="number",
                description="Highest output tokens per second.",
            ),
            AGE_COLUMN,
        ),
    )

    spec: BenchmarkSweepSpec
    """Desired state."""
    status: BenchmarkSweepStatus | None = None
    """Observed state."""
