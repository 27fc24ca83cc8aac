"""ModelDeployment: serve a model with an inference engine on GPU replicas, with autoscaling and a canary.

The engine part (``serving.EngineSpec``) is what the serving launcher reads too; the rest says
where the replicas run, how many there are and how traffic reaches them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.canary import CanaryAnalysis, CanaryAnalysisStatus
from modelfleet_api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    ENV_SCHEMA_EXTRA,
    MAX_ENV,
    Condition,
    EnvVar,
    NodePlacement,
    ObjectName,
    PositiveQuantity,
    SecretKeyRef,
    ServiceAccountName,
    env_rules,
    gpu_count_rules,
    hub_token_env_rule,
    refused_on_cpu,
)
from modelfleet_api.constants import ModelDeploymentPhase
from modelfleet_api.cost import CostStatus
from modelfleet_api.engines.metrics import ENGINE_METRICS, INTERCEPTOR_METRICS, offered
from modelfleet_api.engines.metrics import AutoscalingMetric as AutoscalingMetric
from modelfleet_api.lineage import ServedModel, TrainingJobRef
from modelfleet_api.pods import ServingPodTemplate
from modelfleet_api.resource import (
    AGE_COLUMN,
    DNS_LABEL_MAX,
    CustomResource,
    PrinterColumn,
    ResourceNames,
    name_length_rule,
    service_name_rule,
)
from modelfleet_api.serving import GPU_ONLY_ENGINES, EngineSpec, EngineType, deployment_support_rules
from modelfleet_api.storage import ModelUri
from modelfleet_api.training import ModelSource, hub_id_cel

MAX_REPLICAS = 100
MAX_NAME_LENGTH = DNS_LABEL_MAX - len("-canary")
"""The Deployments and Services of the tracks are ``<name>-stable`` and ``<name>-canary``."""


CPU_ENGINES = sorted(set(EngineType) - GPU_ONLY_ENGINES)
CPU_ENGINES_CEL = "[" + ", ".join(f"'{engine}'" for engine in CPU_ENGINES) + "]"
TENSOR_PARALLEL_LIMIT_CEL = "(self.resources.gpusPerReplica == 0 ? 1 : self.resources.gpusPerReplica)"
"""A replica shards the model over its GPUs, or runs it whole on a CPU."""


def engine_on_cpu_rules(field: str, unless: str = "") -> tuple[CelRule, ...]:
    """On a CPU VM size, the engine at wire path ``field`` must run on a CPU and load unquantized
    weights (the one CPU engine's quantization, bitsandbytes, needs a GPU); ``unless`` is CEL that
    holds when that engine is not set."""
    engine = f"self.{field}"
    return (
        refused_on_cpu(
            f"{unless}{engine}.type in {CPU_ENGINES_CEL}",
            f".{field}.type",
            f"{field}.type needs a GPU: use {' or '.join(CPU_ENGINES)}",
        ),
        refused_on_cpu(
            f"{unless}!has({engine}.settings.quantization)",
            f".{field}.settings.quantization",
            f"{field}.settings.quantization needs a GPU",
        ),
    )


class ServingResources(NodePlacement):
    """GPUs per replica and the AKS VM size and pool the replicas run on; one pod per replica."""

    gpus_per_replica: int = Field(default=1, ge=0, le=8)
    """GPUs each replica (pod) gets; at most the GPUs of `instanceType`; 0 on a CPU `instanceType`."""

    cel_rules = gpu_count_rules("gpusPerReplica")
    gpu_count_field = "gpus_per_replica"


class AutoscalingSpec(ApiModel):
    """Scale replicas on an engine metric (KEDA ScaledObject; an HPA when KEDA is not installed)."""

    min_replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    """Fewest replicas; 0 scales to zero when idle (needs KEDA; the HPA fallback keeps one). A request
    wakes a deployment at zero only through the KEDA HTTP add-on's interceptor, which holds it until a
    replica is ready; one sent straight to the Service fails while no replica runs."""

    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    """Most replicas."""

    metric: AutoscalingMetric = AutoscalingMetric.QUEUE_DEPTH
    """Metric to scale on: the engine's `queueDepth`, `runningRequests`, `kvCacheUsage` or
    `requestsPerSecond`, or `concurrentRequests` counted by the KEDA HTTP add-on's interceptor (any
    engine; needs the add-on)."""

    target: float = Field(gt=0.0, le=1_000_000.0)
    """Target value of the metric per replica (for `kvCacheUsage` a fraction in (0, 1])."""

    activation_threshold: float | None = Field(default=None, ge=0.0, le=1_000_000.0)
    """Scale from zero once the metric exceeds this (KEDA `activationThreshold`); unset: any load."""

    cooldown_seconds: int = Field(default=300, ge=0, le=86_400)
    """Wait this long after the last scale-up-worthy load before scaling down (and to zero)."""

    cold_start_timeout_seconds: int = Field(default=600, ge=10, le=3600)
    """With `minReplicas` 0 and the KEDA HTTP add-on: how long its interceptor holds a request that
    arrived at zero replicas while a replica starts (scheduling, model download, engine load); past it
    the client gets an error. Requests sent straight to the Service are not held."""

    cel_rules = (
        CelRule(
            rule="self.minReplicas <= self.maxReplicas",
            message="minReplicas must be <= maxReplicas",
            field_path=".minReplicas",
        ),
        CelRule(
            rule="self.metric != 'concurrentRequests' || self.target == double(int(self.target))",
            message="concurrentRequests counts requests: target must be a whole number",
            field_path=".target",
        ),
        CelRule(
            rule="self.metric != 'kvCacheUsage' || self.target <= 1.0",
            message="kvCacheUsage is a fraction: target must be in (0, 1]",
            field_path=".target",
        ),
    )


class DeploymentModelSource(ModelSource):
    """The model to serve: a URI, or the output of a TrainingJob."""

    uri: ModelUri | None = None  # type: ignore[assignment]
    """Where the model comes from: a Hugging Face id (`meta-llama/Llama-3.1-8B`), an Azure Blob
    URI (`https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH` or `az://CONTAINER/PATH`), a PVC path
    (`pvc://CLAIM/PATH`) or a local directory in the image (`/models/llama`). Set this or
    `fromTrainingJob`."""

    from_training_job: TrainingJobRef | None = None
    """Serve what a TrainingJob of this namespace wrote, once it Succeeded (until then the track waits,
    condition `ModelReady`): a full model as the model; an adapter on its base model through the
    engine's LoRA support, under the served model name (the base model is served as `<name>-base`), or
    the merged model when the job wrote one (`output.mergeAdapter`). `status.model` records what was
    resolved and the job's UID."""

    cel_rules = (
        CelRule(
            rule="has(self.uri) != has(self.fromTrainingJob)",
            message="set exactly one of uri and fromTrainingJob",
            field_path=".uri",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule=f"!has(self.tokenSecret) || has(self.fromTrainingJob) || {hub_id_cel('self.uri')}",
            message="tokenSecret is a Hugging Face hub token: uri must be a hub id (ORG/NAME)",
            field_path=".tokenSecret",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.fromTrainingJob) || !has(self.revision)",
            message="revision applies to a hub model uri; a TrainingJob's output has none (its base "
            "model's revision is the job's)",
            field_path=".revision",
            reason="FieldValueForbidden",
        ),
    )


class CanarySpec(ApiModel):
    """A second track with a different model, revision, engine or image that gets a share of traffic."""

    model: DeploymentModelSource | None = None
    """Model of the canary; unset: the stable model."""

    engine: EngineSpec | None = None
    """Engine and settings of the canary; unset: the stable engine."""

    image: str | None = Field(default=None, max_length=1024)
    """Serving image of the canary; unset: the stable track's image when the canary runs the same engine,
    else the operator's default image for the canary's engine."""

    weight: int = Field(default=10, ge=0, le=100)
    """Percent of requests routed to the canary (exact with Gateway API; by replica ratio without)."""

    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    """Canary replicas (not autoscaled)."""

    analysis: CanaryAnalysis | None = None
    """Promote the canary stage by stage, each stage gated by a benchmark of both tracks; `weight` is
    then the stages' instead (see `status.canaryAnalysis`). Unset: the canary keeps `weight` until the
    spec changes (manual promotion)."""

    cel_rules = (
        CelRule(
            rule="has(self.model) || has(self.engine) || has(self.image)",
            message="a canary must differ from the stable track: set model, engine or image",
            reason="FieldValueRequired",
        ),
    )


class PvcCache(ApiModel):
    claim_name: ObjectName
    """PersistentVolumeClaim holding (or receiving) the model files; ReadWriteMany to share it between
    replicas."""

    read_only: bool = False
    """Mount read-only: the model must already be there (pre-populated), nothing is downloaded."""


class EmptyDirCache(ApiModel):
    size_limit: PositiveQuantity = "200Gi"
    """Most disk the download may use on the node (a quantity)."""


class ModelCacheSpec(ApiModel):
    """Where the model files live on the replica: a shared PVC or a per-pod emptyDir (the default)."""

    pvc: PvcCache | None = None
    """Use a PersistentVolumeClaim: downloaded once, reused by every replica and restart."""

    empty_dir: EmptyDirCache | None = None
    """Download into an emptyDir on each pod start (the default when neither is set)."""

    cel_rules = (
        CelRule(
            rule="!(has(self.pvc) && has(self.emptyDir))",
            message="set at most one of pvc and emptyDir",
            field_path=".pvc",
            reason="FieldValueForbidden",
        ),
    )


class ModelDeploymentSpec(ApiModel):
    """What to serve, with which engine, on how many GPU replicas."""

    model: DeploymentModelSource
    """Model to serve: a URI or a TrainingJob's output (`loadIn4bit` is a training setting: use
    `engine.settings.quantization`)."""

    served_model_name: str | None = Field(default=None, min_length=1, max_length=256)
    """Name clients put in the `model` field of requests; unset: the ModelDeployment's name."""

    engine: EngineSpec = Field(default_factory=EngineSpec)
    """Inference engine and its settings."""

    resources: ServingResources = Field(default_factory=ServingResources)
    """GPUs per replica, AKS VM size, pool and spot."""

    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    """Fixed replica count (default 1); leave unset when `autoscaling` is set."""

    autoscaling: AutoscalingSpec | None = None
    """Scale on an engine metric instead of a fixed replica count."""

    canary: CanarySpec | None = None
    """A canary track that receives `canary.weight` percent of requests."""

    model_cache: ModelCacheSpec = Field(default_factory=ModelCacheSpec)
    """Where model files are stored on the replicas."""

    api_key_secret: SecretKeyRef | None = None
    """Secret key holding the API key clients must send as a bearer token; unset: no authentication."""

    image: str | None = Field(default=None, max_length=1024)
    """Serving image of the stable track (it must hold the engine and the launcher, `modelfleet-serve`);
    unset: the operator's default image for the engine (chart values `runtimeImages.serving.<engine>`)."""

    env: list[EnvVar] = Field(default_factory=list, max_length=MAX_ENV, json_schema_extra=ENV_SCHEMA_EXTRA)
    """Extra environment variables for the engine container (and the model download), each a literal
    `value` or `valueFrom` a Secret's or ConfigMap's key. Names starting with `PET_` or `MODELFLEET_`
    are reserved for the operator."""

    pod_template: ServingPodTemplate | None = None
    """Additions to the serving pods of both tracks: labels, annotations, tolerations, node affinity,
    image pull secrets, volumes and their mounts, sidecars. The operator's own parts of the pods stay
    as they are."""

    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the serving pods (stable and canary) run as, e.g. a workload-identity one
    federated with the runtime identity to download models from blob storage; it must exist in the
    namespace, or the pods cannot be created (the Deployment reports `ReplicaFailure`). The pods get
    the label `azure.workload.identity/use: "true"`. Unset: the operator's runtime service account
    (chart value `azure.workloadIdentity.runtimeServiceAccount`), else the namespace's `default`."""

    cel_rules = (
        CelRule(
            rule=f"self.engine.settings.tensorParallelSize <= {TENSOR_PARALLEL_LIMIT_CEL}",
            message="engine.settings.tensorParallelSize cannot exceed resources.gpusPerReplica (1 on a CPU)",
            field_path=".engine.settings.tensorParallelSize",
        ),
        CelRule(
            rule=(
                "!has(self.canary) || !has(self.canary.engine) || "
                f"self.canary.engine.settings.tensorParallelSize <= {TENSOR_PARALLEL_LIMIT_CEL}"
            ),
            message=(
                "canary.engine.settings.tensorParallelSize cannot exceed resources.gpusPerReplica "
                "(1 on a CPU)"
            ),
            field_path=".canary.engine.settings.tensorParallelSize",
        ),
        *engine_on_cpu_rules("engine"),
        *engine_on_cpu_rules("canary.engine", unless="!has(self.canary) || !has(self.canary.engine) || "),
        CelRule(
            rule="!has(self.canary) || !has(self.canary.analysis) || "
            "!has(self.canary.analysis.benchmark.quality) || has(self.canary.analysis.benchmark.protocol) || "
            "(self.engine.type != 'triton-trtllm' && "
            "(!has(self.canary.engine) || self.canary.engine.type != 'triton-trtllm'))",
            message="canary.analysis.benchmark.quality is scored through the OpenAI API, and a track running "
            "triton-trtllm speaks KServe v2: set canary.analysis.benchmark.protocol openai-chat or "
            "openai-completions",
            field_path=".canary.analysis.benchmark.quality",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!(has(self.replicas) && has(self.autoscaling))",
            message="set either replicas or autoscaling, not both",
            field_path=".replicas",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!self.model.loadIn4bit",
            message="model.loadIn4bit is a training setting; use engine.settings.quantization: bitsandbytes",
            field_path=".model.loadIn4bit",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.canary) || !has(self.canary.model) || !self.canary.model.loadIn4bit",
            message="canary.model.loadIn4bit is a training setting; use engine.settings.quantization",
            field_path=".canary.model.loadIn4bit",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.autoscaling) || "
            + f"self.autoscaling.metric in [{', '.join(repr(m.value) for m in INTERCEPTOR_METRICS)}] || "
            + " || ".join(
                f"(self.engine.type == '{engine}' && self.autoscaling.metric in "
                f"[{', '.join(repr(m.value) for m in metrics)}])"
                for engine, metrics in ENGINE_METRICS.items()
                if metrics
            ),
            message="autoscaling.metric is not exported by this engine, so the autoscaler could never "
            "scale up or wake from zero ("
            + "; ".join(f"{engine}: {offered(engine)}" for engine in ENGINE_METRICS)
            + "; concurrentRequests is counted by the KEDA HTTP add-on's interceptor): choose one of "
            "these, or fixed replicas",
            field_path=".autoscaling.metric",
        ),
        *deployment_support_rules("engine"),
        *deployment_support_rules("canary.engine", guard="has(self.canary) && has(self.canary.engine)"),
        *env_rules(),
        hub_token_env_rule("model"),
        hub_token_env_rule("canary.model", guard="!has(self.canary) || !has(self.canary.model) || "),
    )


class TrackStatus(ApiModel):
    ready_replicas: int = Field(default=0, ge=0)
    """Replicas that pass their readiness probe."""

    desired_replicas: int = Field(default=0, ge=0)
    """Replicas wanted now (fixed, or the autoscaler's choice)."""

    model: ServedModel | None = None
    """The model this track serves, resolved (the canary's; the stable track's is `status.model`)."""


class StartupBreakdown(ApiModel):
    """Where the latest replica's start-up time went, in seconds since its pod was created."""

    pod: str
    """Name of the measured pod."""

    scheduled_seconds: float | None = Field(default=None, ge=0.0)
    """Until the pod was bound to a node."""

    model_downloaded_seconds: float | None = Field(default=None, ge=0.0)
    """Until the model files were in the cache."""

    engine_loaded_seconds: float | None = Field(default=None, ge=0.0)
    """Until the engine had loaded the weights."""

    ready_seconds: float | None = Field(default=None, ge=0.0)
    """Until the pod was ready to serve."""


class InterceptorRoute(ApiModel):
    """How to reach a ModelDeployment through the KEDA HTTP add-on's interceptor."""

    url: str = Field(min_length=1, max_length=1024)
    """Base URL of the API through the interceptor's proxy Service (with `/v1` or `/v2`, as `endpoint`)."""

    host: str = Field(min_length=1, max_length=253)
    """`Host` header to send: the interceptor routes requests by it."""


class ModelDeploymentStatus(ApiModel):
    """What the operator observed; written only by the operator."""

    phase: ModelDeploymentPhase = ModelDeploymentPhase.PENDING
    """Summary for humans: Pending, Deploying, Ready, Degraded, ScaledToZero or Failed. Tools should read
    `conditions`."""

    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_SCHEMA_EXTRA)
    """Latest observations (Available, Progressing, CanaryReady, Autoscaling, Routed), one per type."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` this status was computed from."""

    cost: CostStatus | None = None
    """What it has cost so far: VM-hours times the operator's list price for the VM size and priority
    (`basis` says which, or why there is none)."""

    model: ServedModel | None = None
    """The model the stable track serves, resolved: its URI, `model` or `adapter`, and the TrainingJob
    (name and UID) behind it with `model.fromTrainingJob`."""

    stable: TrackStatus = Field(default_factory=TrackStatus)
    """Replicas of the stable track."""

    canary: TrackStatus | None = None
    """Replicas of the canary track (with `spec.canary`)."""

    canary_analysis: CanaryAnalysisStatus | None = None
    """Where the benchmark-gated promotion of the canary is (with `spec.canary.analysis`)."""

    ready: str | None = None
    """`ready/desired` replicas over both tracks, for `kubectl get`."""

    endpoint: str | None = None
    """Base URL of the OpenAI-compatible (or KServe v2) API inside the cluster."""

    interceptor: InterceptorRoute | None = None
    """Set while the KEDA HTTP add-on routes the deployment (`minReplicas` 0, or `autoscaling.metric`
    concurrentRequests): a request sent to `interceptor.url` with `Host: interceptor.host` is held while
    no replica runs, wakes the deployment and is answered; one sent to `endpoint` fails at zero."""

    served_model: str | None = None
    """Model name clients send in requests."""

    engine: str | None = None
    """Engine serving the stable track."""

    startup: StartupBreakdown | None = None
    """Start-up time breakdown of the most recently started replica; kept when no replica is left
    (scaled to zero), so a cold start can be read after it."""

    last_scale_time: datetime | None = None
    """When the replica count last changed."""


class ModelDeployment(CustomResource):
    """An inference endpoint for one model on AKS H100 nodes."""

    cel_rules = (
        service_name_rule("it names the deployment's Services"),
        name_length_rule(
            MAX_NAME_LENGTH,
            "each track gets a Deployment and Service named <name>-stable or <name>-canary, and a "
            f"Service name is a DNS label of at most {DNS_LABEL_MAX} characters",
        ),
    )

    names = ResourceNames(
        kind="ModelDeployment",
        plural="modeldeployments",
        short_names=("md",),
        printer_columns=(
            PrinterColumn(name="Engine", json_path=".spec.engine.type", type="string", description="Engine."),
            PrinterColumn(
                name="Model",
                json_path=".status.model.source",
                type="string",
                description="Where the stable model came from: a URI, or trainingjob/NAME.",
            ),
            PrinterColumn(
                name="Ready", json_path=".status.ready", type="string", description="Ready/desired replicas."
            ),
            PrinterColumn(
                name="Endpoint", json_path=".status.endpoint", type="string", description="In-cluster URL."
            ),
            PrinterColumn(name="Phase", json_path=".status.phase", type="string", description="Phase."),
            PrinterColumn(
                name="Cost", json_path=".status.cost.amount", type="number", description="Cost so far."
            ),
            AGE_COLUMN,
        ),
    )

    spec: ModelDeploymentSpec
    """Desired state."""
    status: ModelDeploymentStatus | None = None
    """Observed state."""
