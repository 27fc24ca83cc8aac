"""Names the operator, the runtimes and users share: label keys, condition types, reasons, phases.

One module, like JobSet's ``pkg/constants`` and Kubeflow Trainer's condition reasons: controllers
import these instead of spelling strings, and each reason says which condition it belongs to, so a
user who searches for a reason from ``kubectl describe`` finds its meaning here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# ---- labels on every child object -------------------------------------------------------------
LABEL_NAME: Final = "app.kubernetes.io/name"
"""The kind of workload: ``trainingjob``, ``modeldeployment`` or ``benchmarksweep``."""
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
"""The owning resource's name, so ``kubectl get all -l app.kubernetes.io/instance=NAME`` shows the family."""
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
"""The child's role: one of the ``COMPONENT_*`` values."""
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
"""Always ``PART_OF``."""
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
"""Always ``MANAGED_BY``."""

PART_OF: Final = "modelfleet"
MANAGED_BY: Final = "modelfleet-operator"

COMPONENT_WORKER: Final = "worker"
"""A TrainingJob's worker pods, their Job and headless Service."""
COMPONENT_SERVER: Final = "server"
"""A ModelDeployment's serving pods, Deployment and Service."""
COMPONENT_BENCHMARK: Final = "benchmark"
"""A BenchmarkSweep's load-generator Jobs."""
COMPONENT_CONFIG: Final = "config"
"""Rendered runtime-config ConfigMaps."""

LABEL_TRAINING_JOB: Final = "modelfleet.io/trainingjob"
"""Name of the TrainingJob a child belongs to (selector of its pods)."""
LABEL_MODEL_DEPLOYMENT: Final = "modelfleet.io/modeldeployment"
"""Name of the ModelDeployment a child belongs to (selector of its pods)."""
LABEL_BENCHMARK_SWEEP: Final = "modelfleet.io/benchmarksweep"
"""Name of the BenchmarkSweep a child belongs to."""
LABEL_TRACK: Final = "modelfleet.io/track"
"""Serving track of a ModelDeployment child: ``TRACK_STABLE`` or ``TRACK_CANARY``."""
LABEL_SWEEP_POINT: Final = "modelfleet.io/sweep-point"
"""Index of the sweep point a benchmark Job measures."""
LABEL_SWEEP_TARGET: Final = "modelfleet.io/sweep-target"
"""Name of the sweep target (a ModelDeployment) a benchmark Job or an expanded deployment belongs to."""
LABEL_RESTART_ATTEMPT: Final = "modelfleet.io/restart-attempt"
"""Gang restart count of the worker Job that carries it (0 for the first run)."""

ANNOTATION_SPEC_HASH: Final = "modelfleet.io/spec-hash"
"""Hash of the spec parts a child was built from; a different hash means the child is rebuilt."""

TRACK_STABLE: Final = "stable"
TRACK_CANARY: Final = "canary"

KUEUE_QUEUE_LABEL: Final = "kueue.x-k8s.io/queue-name"
"""Label Kueue reads to admit a workload into a LocalQueue (set from ``spec.queueName``)."""

WORKLOAD_IDENTITY_LABEL: Final = "azure.workload.identity/use"
"""Pod label (value ``"true"``) the AKS workload-identity webhook looks for: it then injects
``AZURE_CLIENT_ID`` (from the service account's ``azure.workload.identity/client-id`` annotation),
``AZURE_FEDERATED_TOKEN_FILE`` and the projected token that ``DefaultAzureCredential`` reads."""

FINALIZER: Final = "modelfleet.io/cleanup"


# ---- phases -----------------------------------------------------------------------------------
class TrainingJobPhase(StrEnum):
    PENDING = "Pending"
    """Accepted; no worker holds a node: children not created yet, waiting for Kueue to admit (or
    re-admit, after a preemption) the gang, or waiting for the runtime ServiceAccount
    (ServiceAccountReady=False)."""
    SCHEDULING = "Scheduling"
    """The gang waits for GPU nodes: its worker pods exist and wait to be placed, or it was released
    after ``spec.schedulingTimeoutSeconds`` and is created again after a backoff (GangRequeued)."""
    RUNNING = "Running"
    """Every worker runs."""
    SUCCEEDED = "Succeeded"
    """Training finished and the output was written."""
    FAILED = "Failed"
    """Gave up; the Failed condition's reason says why."""
    SUSPENDED = "Suspended"
    """``spec.suspend`` is true: workers are deleted, checkpoints kept."""


class ModelDeploymentPhase(StrEnum):
    PENDING = "Pending"
    """Accepted; children not created yet (waiting for the runtime ServiceAccount when
    ServiceAccountReady=False)."""
    DEPLOYING = "Deploying"
    """Replicas are starting (scheduling, downloading the model, loading the engine)."""
    READY = "Ready"
    """Every desired replica of every track serves."""
    DEGRADED = "Degraded"
    """Some replicas serve, fewer than desired; or replicas of the previous spec serve and the current
    one cannot be rolled out (ServiceAccountReady=False)."""
    SCALED_TO_ZERO = "ScaledToZero"
    """The autoscaler scaled to zero replicas (minReplicas 0 and no load)."""
    FAILED = "Failed"
    """No replica can serve; the Available condition's reason says why."""


class BenchmarkSweepPhase(StrEnum):
    PENDING = "Pending"
    """Accepted; targets not resolved yet, or no point started because the benchmark Jobs' runtime
    ServiceAccount is missing (ServiceAccountReady=False)."""
    DEPLOYING = "Deploying"
    """Waiting for the targets (referenced or expanded ModelDeployments) to become Ready."""
    RUNNING = "Running"
    """Measuring points."""
    SUCCEEDED = "Succeeded"
    """Every point was measured (a point may still have failed; see status.points)."""
    FAILED = "Failed"
    """The sweep could not run; the Complete condition's reason says why."""


class PointPhase(StrEnum):
    PENDING = "Pending"
    """Not started."""
    RUNNING = "Running"
    """The load generator runs."""
    SUCCEEDED = "Succeeded"
    """Measured."""
    FAILED = "Failed"
    """Not measured; the point's reason says why."""


# ---- condition types and their reasons -------------------------------------------------------
CONDITION_TRUE: Final = "True"
CONDITION_FALSE: Final = "False"
CONDITION_UNKNOWN: Final = "Unknown"

# TrainingJob
COND_SCHEDULED: Final = "Scheduled"
"""TrainingJob: every worker pod is bound to a node."""
REASON_ALL_WORKERS_SCHEDULED: Final = "AllWorkersScheduled"
"""Scheduled=True: every worker pod has a node."""
REASON_WAITING_FOR_CAPACITY: Final = "WaitingForCapacity"
"""Scheduled=False: some worker pods are unschedulable (no free GPU node of the instance type yet)."""
REASON_WAITING_FOR_ADMISSION: Final = "WaitingForAdmission"
"""Scheduled=False: the Job waits, suspended, for Kueue to admit it (``spec.queueName``); the message
quotes Kueue's reason (its Workload's QuotaReserved condition, e.g. insufficient unused quota)."""
REASON_PREEMPTED: Final = "Preempted"
"""Scheduled=False and Running=False: Kueue preempted the admitted gang (its Workload's Evicted=True,
reason Preempted) for a workload of higher priority: it suspended the Job, whose workers were stopped
(each saving a checkpoint in its grace period). The gang resumes from the latest checkpoint when Kueue
admits it again; not counted against ``spec.backoffLimit``."""
REASON_EVICTED_BY_KUEUE: Final = "EvictedByKueue"
"""Scheduled=False and Running=False: Kueue evicted the admitted gang for another reason than a
preemption (the message quotes Kueue's reason and message); as ``Preempted`` otherwise."""
REASON_GANG_REQUEUED: Final = "GangRequeued"
"""Scheduled=False and Unschedulable=True (``spec.onSchedulingTimeout: Requeue``): the workers were not
all placed within ``spec.schedulingTimeoutSeconds``; the gang was released (its Job deleted, so none
holds a node) and is created again after a backoff (``status.requeueTime``). Counted in
``status.requeues``, not against ``spec.backoffLimit``."""
REASON_SCHEDULING_TIMEOUT: Final = "SchedulingTimeout"
"""Scheduled=False, Unschedulable=True and Failed=True (``spec.onSchedulingTimeout: Fail``): workers
stayed unschedulable longer than ``spec.schedulingTimeoutSeconds``; the Job was deleted so no
half-started gang holds GPUs."""

COND_UNSCHEDULABLE: Final = "Unschedulable"
"""TrainingJob: the scheduler cannot place some workers; the message is the scheduler's own (e.g.
``Insufficient nvidia.com/gpu``). Reasons: WaitingForCapacity while within the scheduling timeout,
GangRequeued or SchedulingTimeout after it, AllWorkersScheduled once it clears."""

COND_RUNNING: Final = "Running"
"""TrainingJob: every worker runs and training makes progress."""
REASON_ALL_WORKERS_RUNNING: Final = "AllWorkersRunning"
"""Running=True: every worker pod runs."""
REASON_RESTARTING: Final = "Restarting"
"""Running=False: the gang is being restarted from the last checkpoint (see ``status.restarts``)."""
REASON_STALLED: Final = "Stalled"
"""Running=False (restart cause): every worker ran but no progress was reported for
``spec.stallTimeoutSeconds``; the gang is restarted."""
REASON_WORKER_FAILED: Final = "WorkerFailed"
"""Running=False (restart cause): a worker pod exited with an error."""
REASON_WORKER_EVICTED: Final = "WorkerEvicted"
"""Running=False (restart cause): a worker was evicted or its (spot) node went away."""

COND_SUSPENDED: Final = "Suspended"
"""TrainingJob: ``spec.suspend`` is true and the workers are gone."""
REASON_SUSPENDED_BY_USER: Final = "SuspendedByUser"
"""Suspended=True: the user set ``spec.suspend``."""
REASON_RESUMED: Final = "Resumed"
"""Suspended=False: ``spec.suspend`` was cleared; training resumes from the last checkpoint."""

# shared by TrainingJob and BenchmarkSweep
COND_COMPLETE: Final = "Complete"
"""TrainingJob, BenchmarkSweep: finished successfully."""
REASON_TRAINING_SUCCEEDED: Final = "TrainingSucceeded"
"""Complete=True (TrainingJob): every worker exited 0 and the output is written."""
REASON_ALL_POINTS_MEASURED: Final = "AllPointsMeasured"
"""Complete=True (BenchmarkSweep): every point ran (see each point's status)."""

COND_FAILED: Final = "Failed"
"""TrainingJob, BenchmarkSweep: gave up."""
REASON_BACKOFF_LIMIT_EXCEEDED: Final = "BackoffLimitExceeded"
"""Failed=True (TrainingJob): more gang restarts than ``spec.backoffLimit``."""
REASON_INVALID_SPEC: Final = "InvalidSpec"
"""Failed=True (any kind): the spec passed the schema but cannot be run (the message names the field).
The phase is Failed until a fixed spec is applied; then the condition is cleared and the resource runs."""
REASON_TARGET_FAILED: Final = "TargetFailed"
"""Failed=True (BenchmarkSweep): a target deployment failed to become Ready."""
REASON_NO_POINT_SUCCEEDED: Final = "NoPointSucceeded"
"""Failed=True (BenchmarkSweep): every point ended and none was measured; see ``status.points``."""

# Reasons of a failed BenchmarkSweep point (``status.points[].reason`` with phase Failed; also posted as
# Warning events). ``TargetFailed`` above applies to points too. A ``deploymentRef`` that names no
# ModelDeployment is waited for (``ReferencesReady=False``), not failed.
REASON_POINT_JOB_FAILED: Final = "JobFailed"
"""Point Failed: the benchmark Job failed (the message carries the pod's termination message or log tail)."""
REASON_POINT_QUALITY_NEEDS_OPENAI: Final = "QualityNeedsOpenAI"
"""Point Failed: the sweep scores ``quality``, which needs an OpenAI protocol, and the target speaks
KServe v2 (a triton-trtllm ``deploymentRef`` and no ``protocol``); no Job was started."""
REASON_POINT_RESULT_MISSING: Final = "ResultMissing"
"""Point Failed: the Job succeeded but its pod left no termination message with the point's figures."""
REASON_POINT_RESULT_UNPARSEABLE: Final = "ResultUnparseable"
"""Point Failed: the termination message is not a ``PointMetrics`` JSON document."""
REASON_POINT_TARGET_NOT_READY: Final = "TargetReadyTimeout"
"""Point Failed: its target deployment did not become Ready within the ready timeout."""
COND_POINTS_SCHEDULED: Final = "PointsScheduled"
"""BenchmarkSweep, False only (reason ``Unschedulable``): a running point's benchmark pod cannot be placed
on a node; the message names the point, its pod and what the scheduler said. Gone once every running
point's pod is placed."""

# ModelDeployment
COND_AVAILABLE: Final = "Available"
"""ModelDeployment: at least one replica serves requests (or the deployment is scaled to zero on purpose)."""
REASON_MINIMUM_REPLICAS_AVAILABLE: Final = "MinimumReplicasAvailable"
"""Available=True: the desired replicas serve."""
REASON_SCALED_TO_ZERO: Final = "ScaledToZero"
"""Available=True: no replica runs because the autoscaler scaled to zero; a request through the KEDA HTTP
add-on's interceptor wakes it, one sent straight to the Service does not (the message says which applies)."""
REASON_REPLICAS_UNAVAILABLE: Final = "ReplicasUnavailable"
"""Available=False: no replica serves yet."""
REASON_UNSCHEDULABLE: Final = "Unschedulable"
"""Available=False: replicas cannot be placed on a node of the instance type."""
REASON_ENGINE_CRASHING: Final = "EngineCrashing"
"""Available=False: the engine container keeps restarting; see the pod logs."""
REASON_MODEL_DOWNLOAD_FAILED: Final = "ModelDownloadFailed"
"""Available=False: the model could not be fetched into the model cache."""

COND_PROGRESSING: Final = "Progressing"
"""ModelDeployment: a rollout (new spec) is under way."""
REASON_ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
"""Progressing=True: new replicas are starting."""
REASON_ROLLOUT_COMPLETE: Final = "RolloutComplete"
"""Progressing=False: every replica runs the current spec."""

COND_CANARY_READY: Final = "CanaryReady"
"""ModelDeployment with ``spec.canary``: the canary track's replicas serve their share of traffic."""
REASON_CANARY_SERVING: Final = "CanaryServing"
"""CanaryReady=True: the canary serves ``spec.canary.weight`` percent of requests."""
REASON_CANARY_NOT_READY: Final = "CanaryNotReady"
"""CanaryReady=False: the canary's replicas are not ready; all traffic goes to the stable track."""

COND_AUTOSCALING: Final = "Autoscaling"
"""ModelDeployment with ``spec.autoscaling``: an autoscaler manages the replica count."""
REASON_KEDA_SCALED_OBJECT: Final = "KedaScaledObject"
"""Autoscaling=True: a KEDA ScaledObject scales on the chosen metric (and to zero)."""
REASON_HPA_FALLBACK: Final = "HpaFallback"
"""Autoscaling=True: KEDA is not installed, a HorizontalPodAutoscaler scales instead (no scale to zero)."""
REASON_AUTOSCALER_UNAVAILABLE: Final = "AutoscalerUnavailable"
"""Autoscaling=False: neither KEDA nor the HPA can serve the metric; replicas stay at ``minReplicas``."""
REASON_CUSTOM_METRICS_UNAVAILABLE: Final = "CustomMetricsUnavailable"
"""Autoscaling=False: KEDA is not installed and the custom metrics API (``custom.metrics.k8s.io``) that
the fallback HPA reads is not served (no adapter's APIService, or it is not Available): the HPA is
applied but cannot scale until a custom-metrics adapter such as prometheus-adapter serves it."""

COND_ROUTED: Final = "Routed"
"""ModelDeployment: an endpoint routes requests to the replicas."""
REASON_HTTP_ROUTE: Final = "HttpRoute"
"""Routed=True: a Gateway API HTTPRoute splits traffic between the tracks by weight."""
REASON_SERVICE_FALLBACK: Final = "ServiceFallback"
"""Routed=True: Gateway API is not installed; one Service selects both tracks (split by replica count)."""

# BenchmarkSweep
COND_TARGETS_READY: Final = "TargetsReady"
"""BenchmarkSweep: every target ModelDeployment is Ready."""
REASON_TARGETS_READY: Final = "AllTargetsReady"
"""TargetsReady=True: every target serves."""
REASON_WAITING_FOR_TARGETS: Final = "WaitingForTargets"
"""TargetsReady=False: some target is not Ready yet."""

COND_SINKS_WRITTEN: Final = "SinksWritten"
"""BenchmarkSweep: the results were written to every configured sink."""
REASON_SINKS_WRITTEN: Final = "ResultsWritten"
"""SinksWritten=True: every sink accepted the results."""
REASON_SINK_FAILED: Final = "SinkFailed"
"""SinksWritten=False: a sink refused the results; the message names it. The measurements stay in status."""

# shared by all three kinds, set when their pods run as a runtime ServiceAccount
COND_SERVICE_ACCOUNT_READY: Final = "ServiceAccountReady"
"""TrainingJob, ModelDeployment, BenchmarkSweep whose pods run as a runtime ServiceAccount
(``spec.serviceAccountName`` or the operator's runtime service account): it exists in the namespace.
Set when the account was found missing; while False no pod owner (worker Job, serving Deployments,
benchmark Jobs) is created or updated."""
REASON_SERVICE_ACCOUNT_NOT_FOUND: Final = "ServiceAccountNotFound"
"""ServiceAccountReady=False: the runtime ServiceAccount does not exist in the namespace, so no pod
could be created (the message names it and the fix). The TrainingJob stays Pending without a
scheduling timeout; a ModelDeployment keeps any replicas of its previous spec; a sweep starts no point.
Retried every resync."""
REASON_SERVICE_ACCOUNT_FOUND: Final = "ServiceAccountFound"
"""ServiceAccountReady=True: the account was created after it had been missing; the resource proceeds."""

# shared by all three kinds: the objects a spec names that the operator does not create
COND_REFERENCES_READY: Final = "ReferencesReady"
"""TrainingJob, ModelDeployment, BenchmarkSweep: every object the spec names and the operator does not
create exists in the cluster (a Secret, a PersistentVolumeClaim, a PriorityClass, a referenced
ModelDeployment). Their names are checked on apply (the CRD); whether they exist depends on the
cluster, so it is a condition: while False the resource waits instead of failing, and proceeds once
they appear (``modelfleet_operator.common.references`` finds them)."""
REASON_REFERENCE_MISSING: Final = "ReferenceMissing"
"""ReferencesReady=False: the message names each missing object, the spec field naming it and the fix."""
REASON_REFERENCES_FOUND: Final = "ReferencesFound"
"""ReferencesReady=True: every named object exists (set once some had been missing)."""

# GPU capacity (TrainingJob, ModelDeployment), set when the operator's capacity manager is enabled
COND_CAPACITY_REQUESTED: Final = "CapacityRequested"
"""The operator asked AKS for node pool capacity for this resource's instance type."""
REASON_POOL_CREATING: Final = "PoolCreating"
"""CapacityRequested=True: no pool of the instance type (and priority) existed; one is being created,
autoscaling from 0 nodes."""
REASON_POOL_SCALING_UP: Final = "PoolScalingUp"
"""CapacityRequested=True: the pool's autoscaler maximum was too small and is being raised."""
REASON_CEILING_REACHED: Final = "CeilingReached"
"""CapacityRequested=False: fitting the request needs more nodes than the operator's ceiling for the
instance type (``MODELFLEET_CAPACITY_MAX_NODES``); ask the cluster admin or lower ``nodes``."""
REASON_NOT_MANAGED: Final = "InstanceTypeNotManaged"
"""CapacityRequested=False: the capacity manager has no ceiling for this instance type, so it leaves
its pools alone; the cluster admin sizes them."""
REASON_POOL_CONFLICT: Final = "PoolNameConflict"
"""CapacityRequested=False: the pool name to use belongs to a pool of another VM size or priority;
set ``resources.nodePool`` to a free name."""
REASON_AZURE_THROTTLED: Final = "AzureThrottled"
"""CapacityRequested=False: Azure Resource Manager throttled the request; retried after its Retry-After."""
REASON_AZURE_ERROR: Final = "AzureError"
"""CapacityRequested=False: Azure Resource Manager refused or failed the request (message has Azure's
code and text); retried with backoff."""

COND_CAPACITY_READY: Final = "CapacityReady"
"""Nodes of the instance type are there for every pod of this resource."""
REASON_CAPACITY_AVAILABLE: Final = "CapacityAvailable"
"""CapacityReady=True: every pod is on a node."""
REASON_POOL_PROVISIONING: Final = "PoolProvisioning"
"""CapacityReady=False: AKS is creating or updating the node pool."""
REASON_WAITING_FOR_NODES: Final = "WaitingForNodes"
"""CapacityReady=False: the pool's maximum fits the request; the cluster autoscaler is adding nodes."""

COND_QUOTA_EXCEEDED: Final = "QuotaExceeded"
"""Azure refused the pool capacity for lack of quota or of the VM size in the region."""
REASON_QUOTA_EXCEEDED: Final = "QuotaExceeded"
"""QuotaExceeded=True: the subscription's vCPU quota of the VM family is too small (Azure's message
names the family); request a quota increase. Retried with backoff."""
REASON_SKU_NOT_AVAILABLE: Final = "SkuNotAvailable"
"""QuotaExceeded=True: the VM size is not offered (or restricted) in the cluster's region or zones."""
REASON_QUOTA_AVAILABLE: Final = "QuotaAvailable"
"""QuotaExceeded=False: a later request for the pool succeeded."""

# ModelDeployment lineage (``model.fromTrainingJob``)
COND_MODEL_READY: Final = "ModelReady"
"""ModelDeployment whose stable or canary model is a TrainingJob's output: that output can be served.
While False for the stable track nothing is deployed (replicas of a previous spec keep serving); while
False for the canary only the stable track runs."""
REASON_MODEL_RESOLVED: Final = "ModelResolved"
"""ModelReady=True: every track's TrainingJob Succeeded; the message says what each track serves."""
REASON_TRAINING_NOT_FINISHED: Final = "TrainingNotFinished"
"""ModelReady=False: the TrainingJob has not Succeeded yet (the message gives its phase and step)."""
REASON_TRAINING_FAILED: Final = "TrainingFailed"
"""ModelReady=False: the TrainingJob Failed; run it again (same name) or point at another job."""
REASON_TRAINING_JOB_NOT_FOUND: Final = "TrainingJobNotFound"
"""ModelReady=False: no TrainingJob of that name exists in the namespace."""
REASON_ADAPTER_NOT_SUPPORTED: Final = "AdapterNotSupported"
"""ModelReady=False: the TrainingJob wrote a LoRA adapter the track's engine cannot serve (no LoRA
support, or not with these settings); use an engine that serves adapters or set the job's
``output.mergeAdapter``."""
REASON_NOT_A_MODEL: Final = "NotAModel"
"""ModelReady=False: the TrainingJob trained a tokenizer (method ``tokenizer``), which no engine serves;
point at a job that trained a model (a later job reads the tokenizer with ``model.tokenizerUri``)."""

COND_SLOS_MET: Final = "SlosMet"
"""BenchmarkSweep with ``slos`` or ``quality.floors``: some measured point meets every SLO and every
quality floor (``bestPerSlo`` names the best)."""
REASON_POINTS_MEET_SLOS: Final = "PointsMeetSlos"
"""SlosMet=True: the message says how many points meet every SLO (and floor) and which is best."""
REASON_NO_POINT_MEETS_SLOS: Final = "NoPointMeetsSlos"
"""SlosMet=False: no measured point meets every SLO and floor, so ``bestPerSlo`` is empty; the message
gives the closest figure measured for each SLO and each floor."""

COMPONENT_ANALYSIS: Final = "analysis"
"""A BenchmarkSweep a ModelDeployment runs to judge its canary (``spec.canary.analysis``)."""
COND_CANARY_ANALYSIS: Final = "CanaryAnalysis"
"""ModelDeployment with ``spec.canary.analysis``: the canary passed every stage."""
REASON_STAGE_IN_PROGRESS: Final = "StageInProgress"
"""CanaryAnalysis=False: a stage is under way (the message says which and what it waits for)."""
REASON_CANARY_STAGE_PASSED: Final = "CanaryStagePassed"
"""Event: a stage passed; the message has the figures, and the next stage's weight applies."""
REASON_CANARY_PROMOTED: Final = "CanaryPromoted"
"""CanaryAnalysis=True: every stage passed; the canary keeps the last stage's weight until the spec
makes it the stable track."""
REASON_CANARY_ROLLED_BACK: Final = "CanaryRolledBack"
"""CanaryAnalysis=False: the canary failed a stage (the message has the deciding figures); it gets no
requests and its replicas are scaled to 0."""
