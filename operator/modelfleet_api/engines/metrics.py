"""Which Prometheus series each engine exports for each engine-neutral autoscaling metric.

Part of the engine contract: the operator builds its autoscaler queries from this table, and the CRD
refuses an `autoscaling.metric` the chosen engine does not export (an autoscaler without its metric
could never scale up, nor wake a deployment scaled to zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelfleet_api.contract import METRICS_PORT, SERVE_PORT, TRITON_METRICS_PORT
from modelfleet_api.serving import EngineType


class AutoscalingMetric(StrEnum):
    QUEUE_DEPTH = "queueDepth"
    """Requests waiting in the engine's queue, per replica."""
    RUNNING_REQUESTS = "runningRequests"
    """Requests being decoded, per replica."""
    KV_CACHE_USAGE = "kvCacheUsage"
    """Fraction of the KV cache in use (0-1), averaged over replicas."""
    REQUESTS_PER_SECOND = "requestsPerSecond"
    """Incoming requests per second, per replica."""
    CONCURRENT_REQUESTS = "concurrentRequests"
    """Requests in flight through the KEDA HTTP add-on's interceptor (held while no replica is ready,
    or being answered), per replica. Measured in front of the engine, so every engine offers it; it
    needs the add-on in the cluster."""


INTERCEPTOR_METRICS = (AutoscalingMetric.CONCURRENT_REQUESTS,)
"""Metrics the KEDA HTTP add-on's interceptor measures, whatever the engine exports."""


@dataclass(frozen=True)
class Series:
    name: str
    """The Prometheus series the engine exports."""
    counter: bool = False
    """A counter (queries take its per-second rate); else a gauge."""


ENGINE_METRICS: dict[EngineType, dict[AutoscalingMetric, Series]] = {
    EngineType.VLLM: {
        AutoscalingMetric.QUEUE_DEPTH: Series("vllm:num_requests_waiting"),
        AutoscalingMetric.RUNNING_REQUESTS: Series("vllm:num_requests_running"),
        # vLLM's V1 engine renamed vllm:gpu_cache_usage_perc (V0) to vllm:kv_cache_usage_perc.
        AutoscalingMetric.KV_CACHE_USAGE: Series("vllm:kv_cache_usage_perc"),
        AutoscalingMetric.REQUESTS_PER_SECOND: Series("vllm:request_success_total", counter=True),
    },
    EngineType.SGLANG: {
        AutoscalingMetric.QUEUE_DEPTH: Series("sglang:num_queue_reqs"),
        AutoscalingMetric.RUNNING_REQUESTS: Series("sglang:num_running_reqs"),
        AutoscalingMetric.KV_CACHE_USAGE: Series("sglang:token_usage"),
        AutoscalingMetric.REQUESTS_PER_SECOND: Series("sglang:num_requests_total", counter=True),
    },
    EngineType.TGI: {
        AutoscalingMetric.QUEUE_DEPTH: Series("tgi_queue_size"),
        AutoscalingMetric.RUNNING_REQUESTS: Series("tgi_batch_current_size"),
        AutoscalingMetric.REQUESTS_PER_SECOND: Series("tgi_request_count", counter=True),
    },
    EngineType.TRITON_TRTLLM: {
        AutoscalingMetric.QUEUE_DEPTH: Series("nv_inference_pending_request_count"),
        AutoscalingMetric.REQUESTS_PER_SECOND: Series("nv_inference_request_success", counter=True),
    },
    # LMDeploy's metrics are opt-in and unstable across releases; transformers serve exports none.
    EngineType.LMDEPLOY: {},
    EngineType.TRANSFORMERS: {},
}
"""Engine -> autoscaling metric -> the series standing for it; a missing entry: not exported."""


def offered(engine: EngineType) -> str:
    """The autoscaling metrics a deployment of this engine can scale on, in words: the engine's own,
    then those the KEDA HTTP add-on's interceptor counts."""
    return ", ".join(m.value for m in (*ENGINE_METRICS[engine], *INTERCEPTOR_METRICS))


METRICS_PATH = "/metrics"
ENGINE_METRICS_PORTS: dict[EngineType, int] = {
    EngineType.VLLM: SERVE_PORT,
    EngineType.SGLANG: SERVE_PORT,  # with --enable-metrics, which its command line always passes
    EngineType.TGI: SERVE_PORT,
    EngineType.TRITON_TRTLLM: TRITON_METRICS_PORT,
}
"""Where each engine serves the series of ``ENGINE_METRICS`` (path ``METRICS_PATH``)."""


def scrape_port(engine: EngineType) -> int:
    """The one port Prometheus scrapes on a serving pod (``prometheus.io/port``): the engine's own
    metrics where it has them (what the autoscaler queries), else the launcher's (model download,
    engine start-up and readiness)."""
    return ENGINE_METRICS_PORTS.get(engine, METRICS_PORT)
