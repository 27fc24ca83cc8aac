"""The operator's own settings, read once at start from flags and environment variables.

Every setting has an environment variable (what a Helm chart sets) and most have a flag (what a
developer types); a flag wins over the variable.
"""

from __future__ import annotations

import argparse
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelfleet_api.common import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_MAX, DNS_SUBDOMAIN_PATTERN
from modelfleet_api.cost import PriceTable
from modelfleet_api.instance_types import CATALOGUE, InstanceType
from modelfleet_api.serving import GPU_ONLY_ENGINES, EngineType
from pydantic import ValidationError

from modelfleet_operator.capacity.settings import CapacitySettings, load_capacity_settings
from modelfleet_operator.worker_nodes import (
    DEFAULT_RDMA_RESOURCE,
    NodeCache,
    WorkerNodeSettings,
    parse_node_cache,
)

DEFAULT_TRAINING_IMAGE = "ghcr.io/modelfleet/training-runtime:0.1.0"
DEFAULT_CPU_RUNTIME_IMAGE = "ghcr.io/modelfleet/runtime-cpu:0.1.0"
DEFAULT_SERVING_IMAGES: dict[EngineType, str] = {
    **{engine: f"ghcr.io/modelfleet/serving-{engine.value}:0.1.0" for engine in GPU_ONLY_ENGINES},
    EngineType.TRANSFORMERS: DEFAULT_CPU_RUNTIME_IMAGE,
}
"""Each engine's serving image (images/serving-<engine>.Dockerfile: the engine's upstream image plus
the launcher); `transformers serve`, the CPU engine, runs in the CPU runtime image."""
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""The Service the Prometheus Operator creates for a Prometheus in namespace ``monitoring``."""
SERVICE_ACCOUNT_NAME = re.compile(f"(?=.{{1,{DNS_SUBDOMAIN_MAX}}}$){DNS_SUBDOMAIN_PATTERN.strip('^$')}")
STORAGE_ACCOUNT_NAME = re.compile("[a-z0-9]{3,24}")
NAMESPACE_NAME = re.compile(f"(?=.{{1,63}}$){DNS_LABEL_PATTERN.strip('^$')}")
DEFAULT_KEDA_HTTP_NAMESPACE = "keda"
"""Where the KEDA HTTP add-on's Helm chart and its ``config/default`` install it."""
"""Azure's rule for storage account names."""


@dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    training_image: str = DEFAULT_TRAINING_IMAGE
    """Image of the worker pods unless a TrainingJob names its own (``MODELFLEET_TRAINING_IMAGE``)."""
    serving_images: dict[EngineType, str] = field(default_factory=lambda: dict(DEFAULT_SERVING_IMAGES))
    """Image of each engine's serving pods unless a ModelDeployment names its own
    (``MODELFLEET_SERVING_IMAGE_<ENGINE>``, e.g. ``MODELFLEET_SERVING_IMAGE_TRITON_TRTLLM``; else
    ``MODELFLEET_SERVING_IMAGE`` for every engine; else the engine's own image)."""
    benchmark_image: str = DEFAULT_CPU_RUNTIME_IMAGE
    """Image of the benchmark client pods unless a BenchmarkSweep names its own
    (``MODELFLEET_BENCHMARK_IMAGE``; else ``MODELFLEET_SERVING_IMAGE``; else the CPU runtime image,
    which carries ``modelfleet-bench``)."""
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    """Prometheus that KEDA queries for the engines' metrics (``MODELFLEET_PROMETHEUS_URL``)."""
    keda_trigger_authentication: str | None = None
    """ClusterTriggerAuthentication that the KEDA prometheus triggers authenticate with
    (``MODELFLEET_KEDA_TRIGGER_AUTHENTICATION``; the chart's ``keda.azureWorkloadIdentity``: workload
    identity towards Azure Monitor managed Prometheus). Unset: the triggers query Prometheus
    unauthenticated."""
    keda_http_namespace: str = DEFAULT_KEDA_HTTP_NAMESPACE
    """Namespace of the KEDA HTTP add-on (``MODELFLEET_KEDA_HTTP_NAMESPACE``): its interceptor holds
    requests for a ModelDeployment at zero replicas and its scaler wakes it."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means cluster-wide (``MODELFLEET_NAMESPACES``, comma-separated)."""
    standalone: bool = False
    """Run without kopf peering (``MODELFLEET_STANDALONE``); with peering, replicas of lower priority
    pause while a higher-priority one runs, which gives hot-standby HA."""
    peering_name: str = "modelfleet"
    """Name of the (Cluster)KopfPeering object replicas coordinate through (``MODELFLEET_PEERING``)."""
    priority: int = 0
    """Peering priority of this replica (``MODELFLEET_PRIORITY``). Unset, it is derived from the pod's
    identity: kopf pauses every operator that sees a peer of the same priority, so the replicas of one
    Deployment must not share one."""
    health_port: int = 8080
    """Port of the liveness endpoint ``/healthz`` (``MODELFLEET_HEALTH_PORT``; 0 disables it)."""
    resync_seconds: float = 300.0
    """Safety resync: how long an object waits for a pass when nothing happens to it
    (``MODELFLEET_RESYNC_SECONDS``). Passes are driven by watch events and by each plan's own deadline
    (timeouts, stalls, TTLs); this only bounds how long a missed event could go unnoticed."""
    workers: int = 32
    """Passes that run at once over all objects (``MODELFLEET_WORKERS``); the others wait for a slot
    (``modelfleet_reconcile_queue_depth{state="waiting"}``), the passes that make children (an
    object's first, or its first after a spec change) before those that report (``common.slots``)."""
    api_qps: float = 0.0
    """Average Kubernetes API requests per second the controllers may make (``MODELFLEET_API_QPS``;
    0: no limit besides ``api_connections``), for a shared API server."""
    api_burst: int = 0
    """Requests allowed at once above ``api_qps`` (``MODELFLEET_API_BURST``; 0: twice the QPS)."""
    api_connections: int = 64
    """Connections to the API server the controllers' requests share (``MODELFLEET_API_CONNECTIONS``);
    kopf's watches have their own."""
    backoff_seconds: float = 5.0
    """Delay before a failed handler is retried (``MODELFLEET_BACKOFF_SECONDS``)."""
    watch_timeout_seconds: int = 300
    """Server-side timeout of each watch request; short values make shutdown fast in tests
    (``MODELFLEET_WATCH_TIMEOUT_SECONDS``)."""
    metrics_port: int = 9090
    """Port of the Prometheus endpoint ``/metrics`` (``MODELFLEET_METRICS_PORT``; 0 disables it)."""
    log_format: str = "json"
    """``json`` (one object per line, with the Kubernetes object it is about) or ``text``
    (``MODELFLEET_LOG_FORMAT``)."""
    runtime_service_account: str | None = None
    """ServiceAccount that training workers, serving pods and benchmark Jobs run as in every namespace,
    unless a resource names its own (``MODELFLEET_RUNTIME_SERVICE_ACCOUNT``; the chart sets it with
    workload identity). Unset: per-job ServiceAccounts for workers, the namespace's ``default`` for
    the others, and no workload-identity label."""
    storage_account: str | None = None
    """Azure storage account of ``az://CONTAINER/PATH`` URIs, given to every runtime pod as
    ``AZURE_STORAGE_ACCOUNT`` (``MODELFLEET_STORAGE_ACCOUNT``)."""
    prices: PriceTable | None = None
    """List prices per VM size and priority for ``status.cost`` (``MODELFLEET_PRICES``, a JSON
    ``modelfleet_api.cost.PriceTable``; the chart's ``pricing`` value). Unset: costs say they are not
    priced."""
    check_secrets: bool = True
    """Whether the Secrets a spec names must exist before pods are made (``MODELFLEET_CHECK_SECRETS``):
    the operator then lists and watches Secrets, keeping only their names. Off: it may not read
    Secrets at all (the chart grants no Secret access), and a missing one shows only as the pods'
    ``CreateContainerConfigError``."""
    capacity: CapacitySettings | None = None
    """The AKS capacity manager, when ``MODELFLEET_CAPACITY_MANAGER=azure`` (see ``capacity.settings``)."""
    worker_nodes: WorkerNodeSettings = field(default_factory=WorkerNodeSettings)
    """What training workers get from the node they run on: InfiniBand, the node-local cache
    (``MODELFLEET_RDMA_*``, ``MODELFLEET_NCCL_TOPOLOGY_DIR``, ``MODELFLEET_NODE_CACHE*``)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelfleet-operator",
        description="Run the modelfleet operator (TrainingJob, ModelDeployment, BenchmarkSweep).",
    )
    parser.add_argument("--training-image", help="default worker image")
    parser.add_argument("--serving-image", help="default serving image of every engine")
    parser.add_argument("--prometheus-url", help="Prometheus that KEDA queries for engine metrics")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", dest="namespaces", help="watch this namespace (repeatable)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument("--standalone", action="store_true", default=None, help="run without peering")
    parser.add_argument("--peering", dest="peering_name", help="peering object name")
    parser.add_argument("--priority", type=int, help="peering priority of this replica")
    parser.add_argument("--health-port", type=int, help="liveness endpoint port (0: off)")
    parser.add_argument("--resync-seconds", type=float, help="periodic re-examination interval")
    parser.add_argument("--backoff-seconds", type=float, help="retry delay of failed handlers")
    parser.add_argument("--workers", type=int, help="passes that run at once")
    parser.add_argument("--api-qps", type=float, help="average API requests per second (0: no limit)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus endpoint port (0: off)")
    parser.add_argument("--log-format", choices=("json", "text"), help="log line format")
    return parser


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _pod_priority(env: Mapping[str, str], default: int) -> int:
    """A stable priority in 1..1,000,000 from the replica's identity (kopf's ``POD_ID``, else the pod
    name: ``HOSTNAME`` in a pod); replicas differ but for a one-in-a-million chance."""
    pod = env.get("POD_ID") or env.get("POD_NAME") or env.get("HOSTNAME")
    return zlib.crc32(pod.encode()) % 1_000_000 + 1 if pod else default


def _positive(value: int, setting: str) -> int:
    if value < 1:
        raise ValueError(f"{setting} must be at least 1, got {value}")
    return value


def _optional_name(env: Mapping[str, str], var: str, pattern: re.Pattern[str], allowed: str) -> str | None:
    """An optional object name from ``env``: unset or empty is None; anything else must match."""
    value = env.get(var, "").strip()
    if not value:
        return None
    if not pattern.fullmatch(value):
        raise ValueError(f"{var}={value!r} is not valid: expected {allowed}")
    return value


def serving_image_variable(engine: EngineType) -> str:
    """The variable naming one engine's serving image (``MODELFLEET_SERVING_IMAGE_SGLANG``)."""
    return f"MODELFLEET_SERVING_IMAGE_{engine.value.upper().replace('-', '_')}"


def _serving_images(flag: str | None, env: Mapping[str, str]) -> dict[EngineType, str]:
    every = flag or env.get("MODELFLEET_SERVING_IMAGE")
    return {
        engine: env.get(serving_image_variable(engine)) or every or default
        for engine, default in DEFAULT_SERVING_IMAGES.items()
    }


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> OperatorConfig:
    """Settings from ``argv`` (default: none) over ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    args = _parser().parse_args(list(argv or []))
    defaults = OperatorConfig()

    namespaces: tuple[str, ...]
    if args.all_namespaces:
        namespaces = ()
    elif args.namespaces:
        namespaces = tuple(args.namespaces)
    else:
        namespaces = tuple(n.strip() for n in env.get("MODELFLEET_NAMESPACES", "").split(",") if n.strip())

    def pick(flag: object, var: str, default: object) -> object:
        if flag is not None:
            return flag
        return env.get(var, default)

    standalone = args.standalone or _env_bool(env.get("MODELFLEET_STANDALONE", "false"))
    return OperatorConfig(
        training_image=str(pick(args.training_image, "MODELFLEET_TRAINING_IMAGE", defaults.training_image)),
        serving_images=_serving_images(args.serving_image, env),
        benchmark_image=env.get("MODELFLEET_BENCHMARK_IMAGE")
        or str(pick(args.serving_image, "MODELFLEET_SERVING_IMAGE", defaults.benchmark_image)),
        prometheus_url=str(pick(args.prometheus_url, "MODELFLEET_PROMETHEUS_URL", defaults.prometheus_url)),
        keda_trigger_authentication=_optional_name(
            env,
            "MODELFLEET_KEDA_TRIGGER_AUTHENTICATION",
            SERVICE_ACCOUNT_NAME,
            "a ClusterTriggerAuthentication name (DNS-1123 subdomain, at most 253 characters)",
        ),
        keda_http_namespace=_optional_name(
            env, "MODELFLEET_KEDA_HTTP_NAMESPACE", NAMESPACE_NAME, "a namespace name (DNS-1123 label)"
        )
        or defaults.keda_http_namespace,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=str(pick(args.peering_name, "MODELFLEET_PEERING", defaults.peering_name)),
        priority=int(str(pick(args.priority, "MODELFLEET_PRIORITY", _pod_priority(env, defaults.priority)))),
        health_port=int(str(pick(args.health_port, "MODELFLEET_HEALTH_PORT", defaults.health_port))),
        resync_seconds=float(
            str(pick(args.resync_seconds, "MODELFLEET_RESYNC_SECONDS", defaults.resync_seconds))
        ),
        backoff_seconds=float(
            str(pick(args.backoff_seconds, "MODELFLEET_BACKOFF_SECONDS", defaults.backoff_seconds))
        ),
        workers=_positive(int(str(pick(args.workers, "MODELFLEET_WORKERS", defaults.workers))), "workers"),
        api_qps=float(str(pick(args.api_qps, "MODELFLEET_API_QPS", defaults.api_qps))),
        api_burst=int(env.get("MODELFLEET_API_BURST", str(defaults.api_burst))),
        api_connections=_positive(
            int(env.get("MODELFLEET_API_CONNECTIONS", str(defaults.api_connections))), "api_connections"
        ),
        watch_timeout_seconds=int(
            env.get("MODELFLEET_WATCH_TIMEOUT_SECONDS", str(defaults.watch_timeout_seconds))
        ),
        metrics_port=int(str(pick(args.metrics_port, "MODELFLEET_METRICS_PORT", defaults.metrics_port))),
        log_format=str(pick(args.log_format, "MODELFLEET_LOG_FORMAT", defaults.log_format)),
        runtime_service_account=_optional_name(
            env,
            "MODELFLEET_RUNTIME_SERVICE_ACCOUNT",
            SERVICE_ACCOUNT_NAME,
            "a ServiceAccount name (DNS-1123 subdomain, at most 253 characters)",
        ),
        storage_account=_optional_name(
            env, "MODELFLEET_STORAGE_ACCOUNT", STORAGE_ACCOUNT_NAME, "3-24 lowercase letters and digits"
        ),
        prices=_prices(env.get("MODELFLEET_PRICES")),
        check_secrets=_env_bool(env.get("MODELFLEET_CHECK_SECRETS", str(defaults.check_secrets))),
        capacity=load_capacity_settings(env),
        worker_nodes=load_worker_node_settings(env),
    )


def _prices(text: str | None) -> PriceTable | None:
    if not text:
        return None
    try:
        return PriceTable.model_validate_json(text)
    except ValidationError as error:
        raise SystemExit(f"MODELFLEET_PRICES is not a valid price table: {error}") from None


RESOURCE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
"""An extended resource name, DOMAIN/NAME."""


def load_worker_node_settings(env: Mapping[str, str]) -> WorkerNodeSettings:
    """``MODELFLEET_RDMA_RESOURCE`` (empty: no RDMA; unset: the default), ``MODELFLEET_RDMA_PER_WORKER``,
    ``MODELFLEET_NCCL_TOPOLOGY_DIR`` (files named after an InfiniBand VM size, ``<SIZE>.xml``),
    ``MODELFLEET_NODE_CACHE`` (``emptyDir[:SIZE]`` or ``hostPath:/PATH``) and
    ``MODELFLEET_NODE_CACHE_MAX_SIZE``."""
    resource = env.get("MODELFLEET_RDMA_RESOURCE", DEFAULT_RDMA_RESOURCE).strip() or None
    if resource is not None and not RESOURCE_NAME.fullmatch(resource):
        raise ValueError(f"MODELFLEET_RDMA_RESOURCE={resource!r} is not valid: expected DOMAIN/NAME")
    per_worker = _positive(int(env.get("MODELFLEET_RDMA_PER_WORKER", "1")), "MODELFLEET_RDMA_PER_WORKER")
    cache: NodeCache = parse_node_cache(
        env.get("MODELFLEET_NODE_CACHE", "emptyDir"), env.get("MODELFLEET_NODE_CACHE_MAX_SIZE", "")
    )
    return WorkerNodeSettings(
        rdma_resource=resource,
        rdma_per_worker=per_worker,
        nccl_topology=_nccl_topology(env.get("MODELFLEET_NCCL_TOPOLOGY_DIR", "")),
        cache=cache,
    )


def _nccl_topology(directory: str) -> dict[InstanceType, str]:
    """The NCCL topology file of each InfiniBand VM size in ``directory`` (``<SIZE>.xml``)."""
    if not directory:
        return {}
    found: dict[InstanceType, str] = {}
    for path in sorted(Path(directory).glob("*.xml")):
        try:
            size = InstanceType(path.stem)
        except ValueError:
            raise ValueError(f"MODELFLEET_NCCL_TOPOLOGY_DIR: {path.name} names no known VM size") from None
        if not CATALOGUE[size].infiniband:
            raise ValueError(f"MODELFLEET_NCCL_TOPOLOGY_DIR: {size.value} has no InfiniBand")
        found[size] = path.read_text()
    return found
