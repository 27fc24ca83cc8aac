"""Which engine metric stands for each autoscaling metric, and the PromQL KEDA evaluates (pure).

Every engine names its Prometheus series differently; this table is the one place that maps the
engine-neutral ``AutoscalingMetric`` onto them. A missing entry means the engine exports no such
metric: the controller then creates no autoscaler and says so in the Autoscaling condition.

Queries are sums over the track's pods; KEDA's ``AverageValue`` metric type divides by the replica
count, so ``spec.autoscaling.target`` is a per-replica value (and ``kvCacheUsage`` an average).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet_api.modeldeployment import AutoscalingMetric
from modelfleet_api.serving import EngineType

RATE_WINDOW = "1m"


@dataclass(frozen=True, kw_only=True)
class EngineMetric:
    series: str
    """The Prometheus series the engine exports."""
    counter: bool = False
    """A counter: the query takes its per-second rate."""
    adapter_name: str
    """Name under which a custom-metrics adapter (prometheus-adapter's default rules) serves it to an
    HPA: counters lose their ``_total`` suffix and become rates."""

    def query(self, namespace: str, pod_prefix: str) -> str:
        selector = f'{{namespace="{namespace}",pod=~"{pod_prefix}-.*"}}'
        if self.counter:
            return f"sum(rate({self.series}{selector}[{RATE_WINDOW}]))"
        return f"sum({self.series}{selector})"


def _gauge(series: str) -> EngineMetric:
    return EngineMetric(series=series, adapter_name=series)


def _counter(series: str) -> EngineMetric:
    return EngineMetric(series=series, counter=True, adapter_name=series.removesuffix("_total"))


ENGINE_METRICS: dict[EngineType, dict[AutoscalingMetric, EngineMetric]] = {
    EngineType.VLLM: {
        AutoscalingMetric.QUEUE_DEPTH: _gauge("vllm:num_requests_waiting"),
        AutoscalingMetric.RUNNING_REQUESTS: _gauge("vllm:num_requests_running"),
        # vLLM's V1 engine renamed vllm:gpu_cache_usage_perc (V0) to vllm:kv_cache_usage_perc.
        AutoscalingMetric.KV_CACHE_USAGE: _gauge("vllm:kv_cache_usage_perc"),
        AutoscalingMetric.REQUESTS_PER_SECOND: _counter("vllm:request_success_total"),
    },
    EngineType.SGLANG: {
        AutoscalingMetric.QUEUE_DEPTH: _gauge("sglang:num_queue_reqs"),
        AutoscalingMetric.RUNNING_REQUESTS: _gauge("sglang:num_running_reqs"),
        AutoscalingMetric.KV_CACHE_USAGE: _gauge("sglang:token_usage"),
        AutoscalingMetric.REQUESTS_PER_SECOND: _counter("sglang:num_requests_total"),
    },
    EngineType.TGI: {
        AutoscalingMetric.QUEUE_DEPTH: _gauge("tgi_queue_size"),
        AutoscalingMetric.RUNNING_REQUESTS: _gauge("tgi_batch_current_size"),
        AutoscalingMetric.REQUESTS_PER_SECOND: _counter("tgi_request_count"),
    },
    EngineType.TRITON_TRTLLM: {
        AutoscalingMetric.QUEUE_DEPTH: _gauge("nv_inference_pending_request_count"),
        AutoscalingMetric.REQUESTS_PER_SECOND: _counter("nv_inference_request_success"),
    },
    # LMDeploy's metrics are opt-in and unstable across releases; transformers serve exports none.
    EngineType.LMDEPLOY: {},
    EngineType.TRANSFORMERS: {},
}


def engine_metric(engine: EngineType, metric: AutoscalingMetric) -> EngineMetric | None:
    return ENGINE_METRICS[engine].get(metric)


def unavailable_message(engine: EngineType, metric: AutoscalingMetric) -> str:
    offered = ", ".join(m.value for m in ENGINE_METRICS[engine]) or "none"
    return (
        f"Engine {engine} exports no metric for autoscaling.metric {metric.value} (it offers: {offered}); "
        f"replicas stay at minReplicas. Choose one of those metrics or another engine."
    )
