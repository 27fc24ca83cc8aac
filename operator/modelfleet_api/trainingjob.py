"""TrainingJob: fine-tune or pre-train a model on a gang of GPU workers (DeepSpeed, FSDP or DDP).

The spec embeds the sub-models of ``modelfleet_api.training``, which the operator resolves into the
``runtime_config.TrainingRuntimeConfig`` every worker reads. Cross-field rules are declared next to
the models as ``cel_rules`` and end up in the CRD, so the API server rejects a bad spec on apply.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelfleet_api.base import ApiModel, CelReason, CelRule
from modelfleet_api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    ENV_SCHEMA_EXTRA,
    MAX_ENV,
    Condition,
    EnvVar,
    LabelName,
    NodePlacement,
    ObjectName,
    PositiveQuantity,
    ServiceAccountName,
    env_rules,
    gpu_count_rules,
    hub_token_env_rule,
    no_local_mlflow_store,
    refused_on_cpu,
)
from modelfleet_api.constants import TrainingJobPhase
from modelfleet_api.cost import CostStatus
from modelfleet_api.evaluation import EvaluationSpec, EvaluationStatus
from modelfleet_api.lineage import TrainingOutput
from modelfleet_api.pods import TrainingPodTemplate
from modelfleet_api.resource import (
    AGE_COLUMN,
    DNS_LABEL_MAX,
    CustomResource,
    PrinterColumn,
    ResourceNames,
    name_length_rule,
    service_name_rule,
)
from modelfleet_api.runtime_config import TrainingProgress
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

MAX_NODES = 256
MIN_GRACE_SECONDS = 30
"""Kubernetes' default grace period: less leaves no time to save a checkpoint."""
MAX_GRACE_SECONDS = 3600
"""An hour: four times the longest notice Azure Scheduled Events give before a planned disruption
(15 minutes)."""
MAX_TTL_SECONDS = 30 * 86_400
"""Keep a finished job at most 30 days before deleting it (unset: keep it until deleted by hand)."""
MAX_NAME_LENGTH = DNS_LABEL_MAX - len(f"-{MAX_NODES - 1}")
"""A TrainingJob's name is its worker Job's and headless Service's; the hostname ``<name>-<index>`` of
the last worker must still be a DNS label."""


class TrainingResources(NodePlacement):
    """How many workers, and on which AKS VM size; one worker pod per node."""

    nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    """Worker pods, one per node (torchrun `--nnodes`)."""

    gpus_per_node: int = Field(default=1, ge=0, le=8)
    """GPUs (and training processes) per worker; at most the GPUs of `instanceType`. 0 on a CPU
    `instanceType`, where each worker runs one training process."""

    shared_memory: PositiveQuantity | None = None
    """Size of each worker's `/dev/shm` (a memory-backed volume: NCCL's transport between the node's
    GPUs and the data loaders' workers use it), counted against `memory`; unset: as large as the pod's
    memory limit."""

    cel_rules = (
        *gpu_count_rules("gpusPerNode"),
        CelRule(
            rule="!has(self.sharedMemory) || !has(self.memory) || "
            "quantity(self.sharedMemory).compareTo(quantity(self.memory)) <= 0",
            message="sharedMemory is memory of the pod: it must not exceed memory",
            field_path=".sharedMemory",
        ),
    )
    gpu_count_field = "gpus_per_node"

    @property
    def processes_per_node(self) -> int:
        """Training processes per worker pod (torchrun `--nproc-per-node`): one per GPU, one on a CPU."""
        return max(self.gpus_per_node, 1)


IMMUTABLE_WHILE_ACTIVE: tuple[str, ...] = (
    "resources.nodes",
    "resources.gpusPerNode",
    "resources.instanceType",
    "method",
    "strategy",
    "model",
    "precision",
)
"""Spec fields (wire paths under `spec`) that must not change while the gang is scheduled or running:
changing them would silently restart the run with a different world size or a different model.
Suspend the job first (phase Suspended), change them, then resume."""

ACTIVE_PHASES: tuple[TrainingJobPhase, ...] = (TrainingJobPhase.SCHEDULING, TrainingJobPhase.RUNNING)

MAX_REQUEUE_BACKOFF_SECONDS = 86_400
"""A day: the longest wait before a requeued gang is created again."""


class SchedulingTimeoutAction(StrEnum):
    """What follows when a gang's workers were not all placed within `schedulingTimeoutSeconds`."""

    REQUEUE = "Requeue"
    """Release the gang and create it again after a backoff."""
    FAIL = "Fail"
    """Release the gang and fail the job."""


def unchanged(path: str) -> str:
    """CEL that holds when the spec field at `path` is the same in `self` and `oldSelf` (both unset
    counts as the same for the optional `model`)."""
    if path != "model":
        return f"self.spec.{path} == oldSelf.spec.{path}"
    return (
        f"has(self.spec.{path}) == has(oldSelf.spec.{path}) && "
        f"(!has(self.spec.{path}) || self.spec.{path} == oldSelf.spec.{path})"
    )


IN_4BIT = "(has(self.model) && self.model.loadIn4bit)"
"""CEL over the spec: the model is loaded in 4-bit (a tokenizer job has no model)."""


def _tokenizer_rule(
    rule: str, message: str, field_path: str, reason: CelReason = "FieldValueInvalid"
) -> CelRule:
    return CelRule(
        rule=f"self.method.type != 'tokenizer' || ({rule})",
        message=f"method tokenizer {message}",
        field_path=field_path,
        reason=reason,
    )


TOKENIZER_RULES = (
    _tokenizer_rule(
        "self.resources.nodes == 1", "trains on one worker (rank 0 alone): set nodes 1", ".resources.nodes"
    ),
    _tokenizer_rule(
        "self.resources.gpusPerNode == 0",
        "uses no GPU: set gpusPerNode 0 and a CPU instanceType (Standard_D<cores>s_v5)",
        ".resources.gpusPerNode",
    ),
    _tokenizer_rule(
        "!has(self.evaluation)",
        "trains no model to evaluate: remove evaluation",
        ".evaluation",
        "FieldValueForbidden",
    ),
    _tokenizer_rule(
        "!has(self.strategy.zeroStage) && !has(self.strategy.fsdp) && !has(self.strategy.deepspeedConfig) "
        "&& self.strategy.cpuOffload == 'none' && self.strategy.launcher == 'torchrun'",
        "runs one process and distributes no model: remove the strategy settings",
        ".strategy",
        "FieldValueForbidden",
    ),
    _tokenizer_rule(
        "!has(self.tracking.mlflowUri) && !has(self.tracking.wandb) && !has(self.tracking.comet) && "
        "!has(self.tracking.pushgatewayUrl)",
        "reports no training metrics: remove tracking",
        ".tracking",
        "FieldValueForbidden",
    ),
)
"""What a tokenizer job refuses: several workers, GPUs, and the settings of model training."""


class TrainingJobSpec(ApiModel):
    """What to train, how, and on which GPUs."""

    model: TrainingModelSource | None = None
    """Base model to start from (its weights, or with `fromScratch` only its architecture); required by
    every method but `tokenizer`, which trains no model."""

    dataset: DatasetSpec
    """Training data."""

    method: MethodSpec = Field(default_factory=MethodSpec)
    """Training method: full fine-tune, LoRA, QLoRA, DPO, pre-training, a reward model, or a tokenizer."""

    strategy: StrategySpec = Field(default_factory=StrategySpec)
    """How the model is distributed over the GPUs: DeepSpeed ZeRO, FSDP or DDP, and their settings."""

    precision: Precision = Precision.BF16
    """Mixed-precision mode: `bf16` (the default, on GPUs and CPUs), `fp16` (GPU only) or `fp32`."""

    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    """Optimizer, schedule, batch and sequence settings."""

    resources: TrainingResources = Field(default_factory=TrainingResources)
    """Workers, GPUs per worker (0 on a CPU size) and the AKS VM size and pool they run on."""

    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    """Where and how often checkpoints are written; a restarted gang resumes from the latest."""

    output: OutputSpec
    """Where the trained model or adapter goes."""

    evaluation: EvaluationSpec | None = None
    """Held-out loss while training, generation metrics and lm-evaluation-harness tasks on the final
    model; the figures go to `status.evaluation`, `status.output.evaluation`, Prometheus and the
    trackers."""

    image: str | None = Field(default=None, max_length=1024)
    """Training runtime image; unset: the operator's default (its `--training-image`)."""

    env: list[EnvVar] = Field(default_factory=list, max_length=MAX_ENV, json_schema_extra=ENV_SCHEMA_EXTRA)
    """Extra environment variables for every worker (e.g. `NCCL_DEBUG`), each a literal `value` or
    `valueFrom` a Secret's or ConfigMap's key. Names starting with `PET_` or `MODELFLEET_` are reserved
    for the operator."""

    pod_template: TrainingPodTemplate | None = None
    """Additions to every worker pod: labels, annotations, tolerations, node affinity, image pull
    secrets, volumes and their mounts, sidecars. The operator's own parts of the pods stay as they are;
    a change applies from the next gang restart."""

    suspend: bool = False
    """Delete the workers and keep the job (and its checkpoints); clear it to resume from the latest
    checkpoint."""

    backoff_limit: int = Field(default=3, ge=0, le=100)
    """Gang restarts (after a worker failure, an eviction or a stall) before the job is Failed."""

    scheduling_timeout_seconds: int = Field(default=1800, ge=0, le=604800)
    """How long the workers may take to all be placed on nodes (0: no limit), counted from the worker
    Job's creation, or with `queueName` from Kueue's admission. A half-placed gang holds GPUs and trains
    nothing (torchrun waits for every rank), so when the time is up the gang is released: its worker
    Job is deleted with its pods, and the nodes the placed ones held are free. `onSchedulingTimeout`
    says what follows."""

    on_scheduling_timeout: SchedulingTimeoutAction = SchedulingTimeoutAction.REQUEUE
    """After a scheduling timeout: `Requeue` (the default) keeps the job Scheduling with
    `Scheduled=False`, reason `GangRequeued` (the scheduler's reason and when the gang is created again)
    and creates the gang again after a backoff (`requeueBackoffSeconds`); requeues are counted in
    `status.requeues`, not against `backoffLimit`. `Fail`: the job fails with reason
    `SchedulingTimeout`."""

    requeue_backoff_seconds: int = Field(default=60, ge=1, le=MAX_REQUEUE_BACKOFF_SECONDS)
    """Wait before a requeued gang is created again, after the job's first requeue; it doubles with
    each requeue, up to `maxRequeueBackoffSeconds`. The default is Kueue's for its own requeues
    (`waitForPodsReady.requeuingStrategy.backoffBaseSeconds`)."""

    max_requeue_backoff_seconds: int = Field(default=3600, ge=1, le=MAX_REQUEUE_BACKOFF_SECONDS)
    """The longest wait before a requeued gang is created again (Kueue's default `backoffMaxSeconds`)."""

    stall_timeout_seconds: int = Field(default=1800, ge=0, le=604800)
    """Restart the gang (reason `Stalled`) when every worker runs but no training step was reported for
    this long (0: never). Must exceed the time to load the model and reach the first step."""

    termination_grace_period_seconds: int | None = Field(
        default=None, ge=MIN_GRACE_SECONDS, le=MAX_GRACE_SECONDS
    )
    """Seconds a worker has, after SIGTERM (a node drain, an eviction, a preemption), to finish its step
    and save a checkpoint before it is killed; torchrun gives its processes as long. Unset: derived
    (docs/operations.md, "Spot evictions and drains"): twice the time to write the node's training
    state (at most its GPUs' memory, or the VM's memory with CPU offload or on a CPU size) at the VM's
    network bandwidth, plus 30 s; from the next attempt on, at least twice the last measured checkpoint
    save and step, plus 30 s. A worker exits as soon as its checkpoint is saved, so a long grace period
    costs nothing. Azure deletes a spot VM 30 s after its eviction notice, whatever this says. A change
    applies from the next gang restart."""

    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=MAX_TTL_SECONDS)
    """Delete the TrainingJob this many seconds after it Succeeded or Failed; unset: keep it."""

    priority_class_name: ObjectName | None = None
    """PriorityClass of the worker pods (lets important jobs preempt others). With `queueName`, Kueue
    takes the gang's priority from it too, and preempts lower-priority gangs as its ClusterQueue's
    `preemption` policy allows."""

    queue_name: LabelName | None = None
    """Kueue LocalQueue to submit the workers to (label `kueue.x-k8s.io/queue-name`); unset: no Kueue.
    When Kueue is installed the worker Job is created suspended and Kueue admits the gang as a whole
    once its quota fits (`Scheduled=False`, reason `WaitingForAdmission`, until then); a gang Kueue
    preempts is stopped (`Preempted`) and resumes from its latest checkpoint when admitted again,
    without counting against `backoffLimit`."""

    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the worker pods run as, e.g. a workload-identity one federated with the runtime
    identity for blob storage; it must exist in the namespace, or the workers cannot be created. The
    pods get the label `azure.workload.identity/use: "true"` and the job's progress Role is bound to
    this account (any job running as it may then write this job's progress ConfigMap). Unset: the
    operator's runtime service account (chart value `azure.workloadIdentity.runtimeServiceAccount`),
    else a ServiceAccount of the job's own with no Azure identity. A change applies from the next
    gang restart."""

    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    """Experiment tracking (MLflow) and metrics push (Pushgateway)."""

    cel_rules = (
        CelRule(
            rule="has(self.model) || self.method.type == 'tokenizer'",
            message="model is required: every method but tokenizer starts from a model (its weights, or "
            "with fromScratch its architecture)",
            field_path=".model",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.model) || self.method.type != 'tokenizer'",
            message="method tokenizer trains a tokenizer from the data set alone: remove model (a later "
            "job reads the tokenizer with model.tokenizerUri)",
            field_path=".model",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.maxRequeueBackoffSeconds >= self.requeueBackoffSeconds",
            message="maxRequeueBackoffSeconds bounds the wait that starts at requeueBackoffSeconds: it must "
            "be at least requeueBackoffSeconds",
            field_path=".maxRequeueBackoffSeconds",
        ),
        no_local_mlflow_store("tracking.mlflowUri"),
        *(
            CelRule(
                rule=f"{guard}!self.{field}.startsWith('/') && !self.{field}.startsWith('file://')",
                message=f"{field} is a path inside the worker pod, lost with the pod: use pvc://CLAIM/PATH "
                "or blob storage (az://CONTAINER/PATH or https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH)",
                field_path=f".{field}",
            )
            for field, guard in (("output.uri", ""), ("checkpoint.uri", "!has(self.checkpoint.uri) || "))
        ),
        CelRule(
            rule=f"!(self.method.type == 'qlora' || {IN_4BIT}) || self.strategy.type == 'ddp'",
            message="4-bit (qlora) training runs with strategy ddp: sharding quantized weights is not "
            "supported",
            field_path=".strategy.type",
        ),
        CelRule(
            rule="!(self.method.type == 'dpo' && !has(self.method.lora) && self.strategy.type == "
            "'deepspeed' && has(self.strategy.zeroStage) && self.strategy.zeroStage == 3)",
            message="full-model DPO under ZeRO-3 would need a sharded reference model: set method.lora (the "
            "reference is the base without adapters) or use zeroStage 2 or less",
            field_path=".method.lora",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="self.precision != 'fp16' || self.strategy.type == 'deepspeed'",
            message="fp16 loss scaling comes with strategy deepspeed only: use bf16 (H100 supports it)",
            field_path=".precision",
        ),
        CelRule(
            rule="!(self.method.type in ['dpo', 'reward']) || !self.dataset.packing",
            message="dpo and reward compare whole chosen and rejected sequences: packing is not supported",
            field_path=".dataset.packing",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.method.type != 'tokenizer' || !self.dataset.packing",
            message="method tokenizer reads the raw text: packing does not apply",
            field_path=".dataset.packing",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.dataset.fields) || !has(self.dataset.fields.messages) || "
            "!(self.method.type in ['pretrain', 'dpo', 'reward', 'tokenizer'])",
            message="pretrain, dpo, reward and tokenizer do not read chat messages: use fields.text "
            "(pretrain, tokenizer) or fields.prompt/chosen/rejected (dpo, reward)",
            field_path=".dataset.fields.messages",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!self.output.mergeAdapter || self.method.type in ['lora', 'qlora'] || "
            "(self.method.type in ['dpo', 'reward'] && has(self.method.lora))",
            message="output.mergeAdapter merges a LoRA adapter: it needs method.type lora or qlora, or dpo "
            "or reward with method.lora",
            field_path=".output.mergeAdapter",
            reason="FieldValueForbidden",
        ),
        *(
            CelRule(
                rule=f"self.method.type != 'reward' || !has(self.evaluation) || !has(self.evaluation.{part})",
                message=f"evaluation.{part} scores generated answers, and a reward model generates none: "
                "measure it on held-out pairs (evaluation.holdoutFraction or evaluation.dataset)",
                field_path=f".evaluation.{part}",
                reason="FieldValueForbidden",
            )
            for part in ("generation", "lmEval")
        ),
        *TOKENIZER_RULES,
        CelRule(
            rule="!self.dataset.streaming || has(self.hyperparameters.maxSteps)",
            message="a streamed data set has no length to count epochs by: set hyperparameters.maxSteps",
            field_path=".hyperparameters.maxSteps",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!self.dataset.streaming || !has(self.evaluation) || !has(self.evaluation.holdoutFraction)",
            message="evaluation.holdoutFraction picks rows of the whole data set, which streaming never "
            "loads: hold out a data set of its own with evaluation.dataset",
            field_path=".evaluation.holdoutFraction",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!self.dataset.streaming || self.method.type != 'tokenizer'",
            message="method tokenizer reads the data set once on one worker: streaming does not apply",
            field_path=".dataset.streaming",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.output.select != 'best' || (has(self.evaluation) && "
            "(has(self.evaluation.holdoutFraction) || has(self.evaluation.dataset)))",
            message="output.select best picks the checkpoint with the lowest held-out loss: set "
            "evaluation.holdoutFraction or evaluation.dataset",
            field_path=".output.select",
        ),
        CelRule(
            rule="self.output.select != 'best' || !has(self.evaluation) || "
            "!has(self.evaluation.intervalSteps) || "
            "self.checkpoint.intervalSteps % self.evaluation.intervalSteps == 0",
            message="with output.select best every checkpoint needs its held-out loss: "
            "checkpoint.intervalSteps must be a multiple of evaluation.intervalSteps",
            field_path=".evaluation.intervalSteps",
        ),
        CelRule(
            rule=f"self.method.type != 'qlora' || {IN_4BIT}",
            message="method qlora needs model.loadIn4bit: true (LoRA on a 4-bit base model)",
            field_path=".model.loadIn4bit",
        ),
        CelRule(
            rule=f"!{IN_4BIT} || self.method.type in ['qlora', 'dpo', 'reward']",
            message="4-bit base weights cannot be trained directly: use method qlora (or dpo or reward "
            "with lora)",
            field_path=".model.loadIn4bit",
        ),
        CelRule(
            rule=f"!{IN_4BIT} || !(self.method.type in ['dpo', 'reward']) || has(self.method.lora)",
            message="dpo and reward on a 4-bit model train adapters: set method.lora",
            field_path=".method.lora",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.model) || !self.model.fromScratch || self.method.type in ['full', 'pretrain']",
            message="a model trained from scratch trains all its weights: method.type full or pretrain",
            field_path=".model.fromScratch",
        ),
        CelRule(
            rule="self.method.backend != 'unsloth' || self.strategy.type == 'ddp'",
            message="method.backend unsloth trains with strategy ddp (one GPU per process)",
            field_path=".strategy.type",
        ),
        CelRule(
            rule=f"self.precision != 'fp32' || !{IN_4BIT}",
            message="a 4-bit base model computes in bf16 or fp16, not fp32",
            field_path=".precision",
        ),
        refused_on_cpu(
            "self.precision != 'fp16'", ".precision", "precision fp16 needs a GPU: use bf16 or fp32"
        ),
        refused_on_cpu(
            f"!{IN_4BIT}",
            ".model.loadIn4bit",
            "4-bit loading (bitsandbytes; method qlora) needs a GPU: use lora",
        ),
        *env_rules(),
        hub_token_env_rule("model", guard="!has(self.model) || "),
    )


MAX_FAILURES_KEPT = 10
"""`status.failures` keeps the latest this many attempts' failures."""
TERMINATION_MESSAGE_MAX = 4096
"""The kubelet keeps at most 4 KiB of a container's termination message."""


class AttemptFailure(ApiModel):
    """Why one attempt's gang stopped: the first worker that failed, as its pod reported it."""

    attempt: int = Field(ge=0)
    """The gang attempt (`status.restarts` when it ran; pods carry it as `modelfleet.io/restart-attempt`)."""

    reason: str = Field(max_length=64)
    """`WorkerFailed`, `WorkerEvicted` or `Stalled`."""

    pod: str | None = Field(default=None, max_length=253)
    """The worker pod that failed first (for a stall: none)."""

    node: str | None = Field(default=None, max_length=253)
    """The node it ran on."""

    exit_code: int | None = None
    """Its container's exit code."""

    message: str = Field(max_length=TERMINATION_MESSAGE_MAX + 512)
    """What happened: the worker's termination message (the exception, its type and the last lines of
    the log, as the runtime wrote them; the kubelet's tail of the log when it wrote none), else the
    pod's or the Job's own reason."""

    logs: str | None = Field(default=None, max_length=2048)
    """Where that attempt's workers saved their logs (one file per pod): `kubectl logs` no longer
    reaches a pod deleted with its gang."""

    time: datetime
    """When the operator saw the failure."""


class TrainingJobStatus(ApiModel):
    """What the operator observed; written only by the operator."""

    phase: TrainingJobPhase = TrainingJobPhase.PENDING
    """Summary for humans: Pending, Scheduling, Running, Succeeded, Failed or Suspended. Tools should read
    `conditions`."""

    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_SCHEMA_EXTRA)
    """Latest observations (Scheduled, Running, Suspended, Complete, Failed), one per type."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` this status was computed from."""

    cost: CostStatus | None = None
    """What it has cost so far: VM-hours times the operator's list price for the VM size and priority
    (`basis` says which, or why there is none)."""

    ready_workers: int = Field(default=0, ge=0)
    """Worker pods running and ready."""

    total_workers: int = Field(default=0, ge=0)
    """Worker pods the job runs (`resources.nodes`)."""

    workers: str | None = None
    """`ready/total` workers, for `kubectl get`."""

    gpus: int | None = Field(default=None, ge=0)
    """GPUs the job holds when running (nodes * gpusPerNode)."""

    start_time: datetime | None = None
    """When the first worker started running."""

    completion_time: datetime | None = None
    """When the job Succeeded or Failed."""

    restarts: int = Field(default=0, ge=0)
    """Gang restarts so far (counted against `backoffLimit`)."""

    requeues: int = Field(default=0, ge=0)
    """Times the gang was released for not being placed within `schedulingTimeoutSeconds` and queued
    again (`onSchedulingTimeout: Requeue`); not counted against `backoffLimit`."""

    requeue_time: datetime | None = None
    """When the requeued gang is created again; unset while the job has a gang."""

    termination_grace_period_seconds: int | None = Field(default=None, ge=0)
    """The grace period the current attempt's workers got (`spec.terminationGracePeriodSeconds`, or
    the derived one)."""

    last_restart_reason: str | None = None
    """Reason of the latest gang restart (`WorkerFailed`, `WorkerEvicted`, `Stalled`)."""

    failures: list[AttemptFailure] = Field(default_factory=list, max_length=MAX_FAILURES_KEPT)
    """The failures of the latest attempts, oldest first: which worker stopped the gang, on which
    node, and what it said."""

    progress: TrainingProgress | None = None
    """Latest progress reported by rank 0 (step, loss, throughput, last checkpoint)."""

    steps: str | None = None
    """`step/totalSteps`, for `kubectl get`."""

    gpu_hours: float = Field(default=0.0, ge=0.0)
    """GPU hours consumed so far over all runs (GPUs * wall time while running)."""

    output: TrainingOutput | None = None
    """What the job wrote (set once it Succeeded): URI, `model` or `adapter`, base model, step and
    evaluation figures. A ModelDeployment serves it with `model.fromTrainingJob`."""

    evaluation: EvaluationStatus | None = None
    """Held-out figures while the job trains: the latest and the best (lowest loss), with their steps, as
    rank 0 reported them (`spec.evaluation`)."""

    gpu_hours_updated_at: datetime | None = None
    """When `gpuHours` was last brought up to date; the GPUs held since then (`gpus`) are added at the
    next update. Unset while the job holds no GPU."""


class TrainingJob(CustomResource):
    """A distributed training run on AKS H100 nodes."""

    names = ResourceNames(
        kind="TrainingJob",
        plural="trainingjobs",
        short_names=("tj",),
        printer_columns=(
            PrinterColumn(name="Phase", json_path=".status.phase", type="string", description="Phase."),
            PrinterColumn(
                name="Workers", json_path=".status.workers", type="string", description="Ready/total workers."
            ),
            PrinterColumn(
                name="GPUs", json_path=".status.gpus", type="integer", description="GPUs held by the job."
            ),
            PrinterColumn(
                name="Progress", json_path=".status.steps", type="string", description="Step/total steps."
            ),
            PrinterColumn(
                name="Loss", json_path=".status.progress.loss", type="number", description="Latest loss."
            ),
            PrinterColumn(
                name="Eval-Loss",
                json_path=".status.evaluation.latest.loss",
                type="number",
                description="Latest held-out loss.",
            ),
            PrinterColumn(
                name="Cost", json_path=".status.cost.amount", type="number", description="Cost so far."
            ),
            AGE_COLUMN,
        ),
    )

    spec: TrainingJobSpec
    """Desired state."""
    status: TrainingJobStatus | None = None
    """Observed state."""

    cel_rules = (
        service_name_rule("it names the workers' headless Service and their hostnames"),
        name_length_rule(
            MAX_NAME_LENGTH,
            f"worker pods are named <name>-<index> (index up to {MAX_NODES - 1}) and resolved as "
            "<name>-<index>.<name>, and a pod hostname and a Service name are DNS labels of at most "
            f"{DNS_LABEL_MAX} characters",
        ),
        *(
            CelRule(
                rule=(
                    "!has(oldSelf.status) || !has(oldSelf.status.phase) || "
                    f"!(oldSelf.status.phase in {[p.value for p in ACTIVE_PHASES]}) || "
                    f"{unchanged(path)}"
                ),
                message=f"spec.{path} cannot change while the job is Scheduling or Running; "
                "suspend it first (spec.suspend: true)",
                field_path=f".spec.{path}",
                reason="FieldValueForbidden",
            )
            for path in IMMUTABLE_WHILE_ACTIVE
        ),
    )
