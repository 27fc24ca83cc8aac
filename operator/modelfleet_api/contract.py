"""The operator-to-runtime contract: every name both sides must agree on, in one place.

The operator sets these environment variables, mounts and ports on the pods it creates; the
runtimes read them. Neither side spells one of these strings itself.
"""

from __future__ import annotations

# ---- training pods ----------------------------------------------------------------------------
CONFIG_DIR = "/etc/modelfleet"
"""Mount path of the ConfigMap holding the resolved runtime config."""
CONFIG_FILE = "config.yaml"
"""Key in that ConfigMap (and file name under CONFIG_DIR)."""
ACCELERATE_CONFIG_FILE = "accelerate.yaml"
"""Key in that ConfigMap (and file under CONFIG_DIR) of the Accelerate config when
`strategy.launcher` is `accelerate`."""
ENV_CONFIG = "MODELFLEET_CONFIG"
"""Path of the runtime config file."""

ENV_POD_NAME = "POD_NAME"
ENV_POD_NAMESPACE = "POD_NAMESPACE"
ENV_JOB_NAME = "MODELFLEET_JOB_NAME"
ENV_RESTART_ATTEMPT = "MODELFLEET_RESTART_ATTEMPT"
"""How many gang restarts preceded this run (0 on the first); the runtime logs it and resumes."""

# torchrun reads PET_<FLAG> for each of its flags; the operator sets these so the pod's command
# stays a plain `torchrun -m modelfleet_train` and the node rank comes from the Indexed Job.
ENV_NNODES = "PET_NNODES"
ENV_NPROC_PER_NODE = "PET_NPROC_PER_NODE"
ENV_NODE_RANK = "PET_NODE_RANK"
ENV_MASTER_ADDR = "PET_MASTER_ADDR"
ENV_MASTER_PORT = "PET_MASTER_PORT"
JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
"""Set by Kubernetes on Indexed Job pods; the operator maps it to the node rank."""
MASTER_PORT = 29500

ENV_TORCH_SHUTDOWN_TIMEOUT = "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"
"""Seconds torchrun (and `accelerate launch`, which runs it) waits for its processes after passing a
SIGTERM on, before it kills them; the operator sets it from the pod's termination grace period."""

SUPERVISOR_MODULE = "modelfleet_train.supervise"
"""What a worker container runs (``python -m``): it starts the launcher (torchrun or `accelerate
launch`), passes SIGTERM on, saves the pod's log beside the checkpoints and writes the termination
message when the launcher fails."""
ENV_RUN_DIR = "MODELFLEET_RUN_DIR"
"""A directory the supervisor gives the pod's training processes; each writes why it failed there."""
TERMINATION_LOG = "/dev/termination-log"
"""The worker container's terminationMessagePath (the kubelet keeps at most 4 KiB of it)."""
ENV_TERMINATION_LOG = "MODELFLEET_TERMINATION_LOG"
"""Where the supervisor writes the termination message instead (a run outside Kubernetes)."""

ENV_PROGRESS_CONFIGMAP = "MODELFLEET_PROGRESS_CONFIGMAP"
"""Name of the ConfigMap (in POD_NAMESPACE) where rank 0 publishes progress; the operator mirrors
its ``progress`` key into the TrainingJob status. A per-job Role allows patching only that object."""
PROGRESS_KEY = "progress"
"""Key in the progress ConfigMap holding a JSON ``runtime_config.TrainingProgress``."""

ENV_METRICS_PORT = "MODELFLEET_METRICS_PORT"
METRICS_PORT = 9090
"""Port of rank 0's Prometheus endpoint (training) and of the launcher's metrics (serving)."""

SHM_MOUNT = "/dev/shm"

ENV_CACHE_DIR = "MODELFLEET_CACHE_DIR"
"""Where the training runtime caches what it downloads (models, datasets from blob or the hub)."""
RUNTIME_CACHE_DIR = "/var/cache/modelfleet"
"""Where the operator mounts that cache in every worker pod: the node's cache directory (hostPath, shared
by the jobs on the node) or the pod's own emptyDir."""
ENV_CACHE_MAX_BYTES = "MODELFLEET_CACHE_MAX_BYTES"
"""A node cache's size cap: the runtime removes the entries used longest ago beyond it."""
ENV_HF_HOME = "HF_HOME"
"""The Hugging Face hub's and datasets' cache (the node cache's ``huggingface/``)."""
ENV_TORCH_EXTENSIONS_DIR = "TORCH_EXTENSIONS_DIR"
"""Where torch keeps the ops it compiles on first use (DeepSpeed's), in the node cache."""

ENV_WANDB_API_KEY = "WANDB_API_KEY"
"""Weights & Biases API key (from `tracking.wandb.apiKeySecret`), the name the wandb library reads."""
ENV_COMET_API_KEY = "COMET_API_KEY"
"""CometML API key (from `tracking.comet.apiKeySecret`), the name the comet_ml library reads."""

# ---- serving pods -----------------------------------------------------------------------------
ENV_SERVE_CONFIG = "MODELFLEET_SERVE_CONFIG"
SERVE_PORT = 8000
"""Port every engine's OpenAI-compatible (or KServe v2) HTTP API listens on inside the pod."""
MODEL_CACHE_DIR = "/models"
"""Where the model is downloaded to (emptyDir or PVC) and read from by the engine."""
ENV_BENCH_CONFIG = "MODELFLEET_BENCH_CONFIG"
"""Path of a benchmark Job's ``benchmark.BenchmarkRuntimeConfig`` file."""
BENCH_RESULTS_DIR = "/results"
"""The emptyDir a benchmark pod writes its result files to."""
TRITON_GRPC_PORT = 8001
"""Port of Triton's KServe v2 gRPC API (its HTTP API is on SERVE_PORT)."""
TRITON_METRICS_PORT = 8002
"""Port of Triton's own Prometheus endpoint."""
PVC_MOUNT_ROOT = "/mnt/pvc"
"""A `pvc://CLAIM/PATH` URI is read at PVC_MOUNT_ROOT/CLAIM/PATH: the operator mounts each claim there."""
ENV_STORAGE_ACCOUNT = "AZURE_STORAGE_ACCOUNT"
"""Storage account of `az://CONTAINER/PATH` URIs (https blob URIs name their account themselves)."""
