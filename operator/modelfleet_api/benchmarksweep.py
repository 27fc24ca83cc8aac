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
    RESULTS_URI_MAX_LENGTH,
    Sinks,
)
from modelfleet_api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    DNS_LABEL_PATTERN,
    SET,
    Condition,
    ModelDeploymentName,
    no_local_mlflow_store,
    refused_on_cpu,
)
from modelfleet_api.constants import BenchmarkSweepPhase, PointPhase
from modelfleet_api.cost import CostStatus
from modelfleet_api.modeldeployment import CPU_ENGINES, CPU_ENGINES_CEL, ModelDeploymentSpec
from modelfleet_api.pods import BenchmarkPodTemplate
from modelfleet_api.quality import PointQuality
from modelfleet_api.resource import (
    AGE_COLUMN,
    DNS_LABEL_MAX,
    CustomResource,
    PrinterColumn,
    ResourceNames,
    name_length_rule,
    service_name_rule,
)
from modelfleet_api.serving import (
    ENGINE_SUPPORT,
    QUANTIZATION_TABLE,
    EngineType,
    Quantization,
    cel_list,
    quantization_supported_cel,
    settings_alias,
    support_checks,
)
from modelfleet_api.storage import BlobUri, ModelUri
from modelfleet_api.sweep_template import SweepTemplate

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

    engine: list[EngineType] = Field(default_factory=list, max_length=MAX_AXIS_VALUES, json_schema_extra=SET)
    """Engines (`engine.type`)."""

    model: list[ModelUri] = Field(default_factory=list, max_length=MAX_AXIS_VALUES, json_schema_extra=SET)
    """Model URIs (`model.uri`)."""

    tensor_parallel_size: list[Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=list, max_length=MAX_AXIS_VALUES, json_schema_extra=SET
    )
    """Tensor-parallel sizes (`engine.settings.tensorParallelSize`, whose rule applies to each)."""

    quantization: list[QuantizationChoice] = Field(
        default_factory=list, max_length=MAX_AXIS_VALUES, json_schema_extra=SET
    )
    """Quantizations (`engine.settings.quantization`; `none` for unquantized)."""


_ENGINES = (
    "(has(self.axes.engine) && size(self.axes.engine) > 0 ? self.axes.engine : [self.template.engine.type])"
)
"""CEL: the engines a template target expands over."""
_REPLACED_BY_AXES = {"quantization": "quantization", "tensor_parallel_size": "tensorParallelSize"}
"""Settings an axis replaces (the template's own value is then not used): Python name -> axis."""


def axes_support_rules() -> tuple[CelRule, ...]:
    """``serving.ENGINE_SUPPORT`` over the expansion: every engine of the engine axis must support the
    template's settings (those no axis replaces), and every value of the quantization and
    tensor-parallel axes must be supported by every engine expanded."""
    guard = "!has(self.template) || !has(self.axes)"
    rules = []
    for check in support_checks():
        axis = _REPLACED_BY_AXES.get(check.setting)
        unless_replaced = "" if axis is None else f"(has(self.axes.{axis}) && size(self.axes.{axis}) > 0) || "
        condition = check.condition("e", "self.template.engine.settings")
        rules.append(
            CelRule(
                rule=f"{guard} || !has(self.axes.engine) || {unless_replaced}"
                f"self.axes.engine.all(e, {condition})",
                message=f"axes.engine: the template's engine.settings.{settings_alias(check.setting)} "
                f"{check.message}",
                field_path=".axes.engine",
                reason=check.reason,
            )
        )
    quantization = quantization_supported_cel("e", "q")
    rules.append(
        CelRule(
            rule=f"{guard} || !has(self.axes.quantization) || "
            f"self.axes.quantization.all(q, q == 'none' || {_ENGINES}.all(e, {quantization}))",
            message="axes.quantization: every value must be supported by every engine expanded "
            f"({QUANTIZATION_TABLE})",
            field_path=".axes.quantization",
        )
    )
    no_tp = [e for e, s in ENGINE_SUPPORT.items() if "tensor_parallel_size" in s.unsupported_settings]
    rules.append(
        CelRule(
            rule=f"{guard} || !has(self.axes.tensorParallelSize) || "
            f"self.axes.tensorParallelSize.all(tp, tp == 1 || {_ENGINES}.all(e, !(e in {cel_list(no_tp)})))",
            message=f"axes.tensorParallelSize: engine {' or '.join(no_tp)} runs on one device (size 1 only)",
            field_path=".axes.tensorParallelSize",
        )
    )
    return tuple(rules)


class SweepTarget(ApiModel):
    """One deployment to measure, or a template that expands into several."""

    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL_PATTERN)
    """Label of the target in results; expanded deployments are named `<sweep>-<name>-<index>`."""

    deployment_ref: ModelDeploymentName | None = None
    """Name of an existing ModelDeployment in the sweep's namespace."""

    track: Track | None = None
    """Measure one track of `deploymentRef` through its own Service (`<name>-stable` or `<name>-canary`)
    instead of the endpoint that splits requests between them; a canary analysis measures each so."""

    template: ModelDeploymentSpec | None = None
    """Spec of ModelDeployments the sweep creates (and deletes when done)."""

    axes: TemplateAxes | None = None
    """Values to expand the template over (template only)."""

    cel_rules = (
        *axes_support_rules(),
        CelRule(
            rule="has(self.deploymentRef) != has(self.template)",
            message="set exactly one of deploymentRef and template",
            field_path=".deploymentRef",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.template) || !has(self.axes) || !has(self.axes.model) || "
            "size(self.axes.model) == 0 || has(self.template.model.uri)",
            message="axes.model replaces template.model.uri: a template serving a TrainingJob's output "
            "(model.fromTrainingJob) has no model axis",
            field_path=".axes.model",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="has(self.deploymentRef) || !has(self.track)",
            message="track selects a track of a deploymentRef; a template's deployment has one track",
            field_path=".track",
            reason="FieldValueForbidden",
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
                "self.axes.tensorParallelSize.all(tp, tp <= self.template.resources.gpusPerReplica || "
                "(tp == 1 && self.template.resources.gpusPerReplica == 0))"
            ),
            message=(
                "axes.tensorParallelSize values cannot exceed template.resources.gpusPerReplica (1 on a CPU)"
            ),
            field_path=".axes.tensorParallelSize",
        ),
        refused_on_cpu(
            "!has(self.template) || !has(self.axes) || !has(self.axes.engine) || "
            f"self.axes.engine.all(e, e in {CPU_ENGINES_CEL})",
            ".axes.engine",
            f"axes.engine values other than {' and '.join(CPU_ENGINES)} need a GPU",
            resources="self.template.resources",
        ),
        refused_on_cpu(
            "!has(self.template) || !has(self.axes) || !has(self.axes.quantization) || "
            "self.axes.quantization.all(q, q == 'none')",
            ".axes.quantization",
            "axes.quantization values other than none need a GPU",
            resources="self.template.resources",
        ),
    )


class Track(StrEnum):
    STABLE = "stable"
    CANARY = "canary"


class TokenLengths(ApiModel):
    input_tokens: int = Field(ge=1, le=1_048_576)
    """Prompt length in tokens."""

    output_tokens: int = Field(ge=1, le=1_048_576)
    """Requested output length in tokens."""


class SweepSinks(Sinks):
    """Where results go besides the status (every sink is optional)."""

    config_map: bool = True
    """Write every point's full results (JSON) into a ConfigMap `<sweep>-results`."""

    blob_uri: BlobUri | None = None
    """Azure Blob prefix for the result files of every point: point N's `results.json` and
    `requests.csv` go under `<blobUri>/<namespace>/<sweep>/point-N/` (its `status.points[].resultsUri`).
    `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]`, or `az://CONTAINER[/PATH]` when the
    benchmark pods have `AZURE_STORAGE_ACCOUNT`. The benchmark pods upload with workload identity."""


_NO_TRITON_TEMPLATE = (
    "self.targets.all(t, !has(t.template) || "
    "!((has(t.axes) && has(t.axes.engine) && size(t.axes.engine) > 0) ? "
    "t.axes.engine.exists(e, e == 'triton-trtllm') : t.template.engine.type == 'triton-trtllm'))"
)
"""CEL: no template target expands to a triton-trtllm deployment (which speaks KServe v2 unless the
sweep sets a protocol)."""


class BenchmarkSweepSpec(SweepTemplate):
    """What to measure, how hard, and where results go."""

    targets: list[SweepTarget] = Field(min_length=1, max_length=MAX_TARGETS)
    """Deployments to measure (names must be unique)."""

    token_lengths: list[TokenLengths] = Field(default_factory=list, max_length=MAX_AXIS_VALUES)
    """Extra axis: each entry replaces the synthetic workload's lengths with these constants."""

    max_parallel_points: int = Field(default=1, ge=1, le=64)
    """Points measured at the same time (on different targets; one target is measured one point at a
    time so points do not disturb each other)."""

    sinks: SweepSinks = Field(default_factory=SweepSinks)
    """Result exports."""

    pod_template: BenchmarkPodTemplate | None = None
    """Additions to every point's benchmark pod: labels, annotations, tolerations, node affinity, image
    pull secrets, volumes and their mounts, sidecars. The operator's own parts of the pods stay as they
    are. Deployments expanded from `targets[].template` take the template's own `podTemplate`."""

    cel_rules = (
        CelRule(
            rule="self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
            message="target names must be unique",
            field_path=".targets",
        ),
        CelRule(
            rule="self.targets.all(t, !has(t.deploymentRef) || "
            "self.targets.exists_one(u, has(u.deploymentRef) && u.deploymentRef == t.deploymentRef))",
            message="two targets measure the same deploymentRef: measure each deployment once (one track "
            "each; another sweep measures its other track)",
            field_path=".targets",
        ),
        CelRule(
            rule="!has(self.tokenLengths) || size(self.tokenLengths) == 0 || has(self.workload.synthetic)",
            message="tokenLengths replace synthetic lengths: it needs workload.synthetic",
            field_path=".tokenLengths",
        ),
        no_local_mlflow_store("sinks.mlflow.trackingUri"),
        CelRule(
            rule=f"!has(self.workload.multiTurn) || has(self.protocol) || {_NO_TRITON_TEMPLATE}",
            message="multi-turn conversations need the openai-chat protocol, and a template target running "
            "triton-trtllm speaks KServe v2: set protocol openai-chat or measure triton apart",
            field_path=".workload.multiTurn",
        ),
        CelRule(
            rule=f"!has(self.quality) || has(self.protocol) || {_NO_TRITON_TEMPLATE}",
            message="quality is scored through the OpenAI API, and a template target running triton-trtllm "
            "speaks KServe v2: set protocol openai-chat or openai-completions, or measure triton apart",
            field_path=".quality",
            reason="FieldValueForbidden",
        ),
        *SweepTemplate.cel_rules,
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

    achieved_request_rate: float | None = None
    """Requests sent per second as the client sent them: (n - 1) / (last start - first start)."""

    held_load: bool | None = None
    """Whether the client kept the load's schedule: at most 1 % of requests sent more than
    `lateThresholdMs` late and (open loop) an achieved rate within 1 % of the planned one. False means
    the figures describe a lighter load than asked for (the client ran out of CPU or connections)."""

    schedule_lag_p50_ms: float | None = None
    """Median of how late requests were sent: start minus planned send time (open loop: the arrival;
    closed loop and later turns: the previous reply's end, plus the think time)."""

    schedule_lag_p99_ms: float | None = None
    """99th percentile of the schedule lag."""

    late_requests: int | None = Field(default=None, ge=0)
    """Requests sent more than `lateThresholdMs` after their planned time."""

    prefix_cache_hit_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of prompt tokens the engine served from its prefix cache during the point, as the engine
    reports it (usage `cached_tokens`, else its Prometheus counters); unset where it reports none."""

    results_uri: str | None = Field(default=None, max_length=RESULTS_URI_MAX_LENGTH)
    """Blob prefix the point's result files were uploaded under (`sinks.blobUri`); unset when there is
    no blob sink or the upload failed."""

    sink_errors: list[Annotated[str, Field(max_length=SINK_ERROR_MAX_LENGTH)]] | None = Field(
        default=None, max_length=SINK_ERRORS_MAX
    )
    """Sinks that failed for this point, each `SINK: error` (cut short); the figures are recorded all
    the same."""

    quality: PointQuality | None = None
    """Quality scores of the target's answers, measured after the load phase (with `quality`)."""


class PointStatus(PointMetrics):
    """One measured (target, lengths, load level) point."""

    index: int = Field(ge=0)
    """Position in the sweep (label `modelfleet.io/sweep-point` of its Job)."""

    target: str
    """Target name (and for expanded templates, the axis values)."""

    deployment: str | None = None
    """ModelDeployment measured."""

    track: str | None = None
    """The deployment's track measured (`stable` or `canary`); unset: its endpoint."""

    model_uri: str | None = None
    """The model the measured track served (its base model for an adapter), from the deployment's
    status when the point started."""

    adapter_uri: str | None = None
    """The LoRA adapter served on `modelUri`, when the track serves a trained adapter."""

    training_job: str | None = None
    """The TrainingJob whose output was measured (`NAME (uid UID)`), with `model.fromTrainingJob`."""

    load: str
    """Load level, e.g. `concurrency=8` or `rate=4/s (poisson)`."""

    concurrency: int | None = Field(default=None, ge=1)
    """Closed loop: the point's concurrent users."""

    request_rate: float | None = Field(default=None, gt=0.0)
    """Open loop: the point's request rate (requests/s)."""

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
    """`all`: the best point meeting every SLO (and every `quality.floors` entry); `throughput` for the
    highest throughput regardless of SLOs and quality."""

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


class FrontierEntry(ApiModel):
    """What `load.search` found for one target (and token lengths)."""

    target: str
    """Target name."""

    input_tokens: int | None = None
    """Prompt length (with `tokenLengths`)."""

    output_tokens: int | None = None
    """Output length (with `tokenLengths`)."""

    done: bool = False
    """Whether the search of this target ended."""

    max_load: float | None = None
    """Highest level measured that met the SLOs (requests/s or concurrency); unset while none has,
    or when even `search.min` did not."""

    point: int | None = None
    """Index of the point measured at `maxLoad`."""

    load: str | None = None
    """Label of that point's load."""

    output_tokens_per_second: float | None = None
    """Output tokens per second at `maxLoad`."""

    goodput: float | None = None
    """Goodput at `maxLoad`."""

    first_failing_load: float | None = None
    """Lowest level measured that did not meet the SLOs."""

    limited_by: list[str] = Field(default_factory=list)
    """Why `firstFailingLoad` failed: SLO fields (`ttftP95Ms`, `tpotP95Ms`, `e2eP95Ms`), `heldLoad`,
    `errorRate`, `pointFailed`; `search.max` when the highest level allowed met them."""

    points: int = Field(default=0, ge=0)
    """Points measured for this search."""


class PlotLink(ApiModel):
    """Where to read the sweep's plot."""

    config_map: str
    """ConfigMap holding it (the results ConfigMap)."""

    key: str
    """Key of the HTML page (latency against throughput, one series per target, every point labelled
    with its load, the SLO thresholds drawn), e.g.
    `kubectl get configmap NAME -o jsonpath='{.data.sweep\\.html}' > sweep.html`."""


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

    cost: CostStatus | None = None
    """What a deployment the sweep created has cost, as it last reported (kept once it is deleted)."""


class BenchmarkSweepStatus(ApiModel):
    """What the operator observed; written only by the operator."""

    phase: BenchmarkSweepPhase = BenchmarkSweepPhase.PENDING
    """Summary for humans: Pending, Deploying, Running, Succeeded or Failed."""

    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_SCHEMA_EXTRA)
    """Latest observations (TargetsReady, Complete, Failed, SinksWritten, SlosMet), one per type."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` this status was computed from."""

    cost: CostStatus | None = None
    """What the deployments the sweep created (templates) have cost so far, added up; referenced
    deployments are not the sweep's (they report their own), nor are the benchmark pods."""

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
    """The highest-throughput point that meets every SLO and every quality floor (`all`); empty when no
    point does (condition `SlosMet` then says so, with the closest figures measured). It never names a
    point failing an SLO or a floor."""

    best_throughput: BestPoint | None = None
    """Highest output-token throughput of any point, SLOs aside."""

    frontier: list[FrontierEntry] = Field(default_factory=list)
    """With `load.search`: the highest load meeting the SLOs, per target and token lengths."""

    results_config_map: str | None = None
    """ConfigMap with the full results (with `sinks.configMap`)."""

    plot: PlotLink | None = None
    """The sweep's plot (with `sinks.configMap`), redrawn as points end."""

    completion_time: datetime | None = None
    """When the last point ended."""


class BenchmarkSweep(CustomResource):
    """A grid of benchmark points over deployments and load levels."""

    cel_rules = (
        service_name_rule("the ModelDeployments expanded from templates (and their Services) start with it"),
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
            PrinterColumn(
                name="Cost", json_path=".status.cost.amount", type="number", description="Cost so far."
            ),
            AGE_COLUMN,
        ),
    )

    spec: BenchmarkSweepSpec
    """Desired state."""
    status: BenchmarkSweepStatus | None = None
    """Observed state."""
