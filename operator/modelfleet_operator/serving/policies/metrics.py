"""Which engine metric stands for each autoscaling metric, and the PromQL KEDA evaluates (pure).

Every engine names its Prometheus series differently; the engine contract
(``modelfleet_api.engines.metrics``) is the one place that maps the engine-neutral
``AutoscalingMetric`` onto them, and the CRD refuses a metric the engine does not export. A missing
entry (an object stored before that rule) makes the controller create no autoscaler and say so in the
Autoscaling condition.

Queries are sums over the track's pods; KEDA's ``AverageValue`` metric type divides by the replica
count, so ``spec.autoscaling.target`` is a per-replica value (and ``kvCacheUsage`` an average).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet_api.engines.metrics import ENGINE_METRICS as ENGINE_SERIES
from modelfleet_api.engines.metrics import AutoscalingMetric, offered
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
    engine: {metric: (_counter if s.counter else _gauge)(s.name) for metric, s in series.items()}
    for engine, series in ENGINE_SERIES.items()
}
"""The engine contract's series (``modelfleet_api.engines.metrics``) with their queries."""


def engine_metric(engine: EngineType, metric: AutoscalingMetric) -> EngineMetric | None:
    return ENGINE_METRICS[engine].get(metric)


def unavailable_message(engine: EngineType, metric: AutoscalingMetric) -> str:
    return (
        f"Engine {engine} exports no metric for autoscaling.metric {metric.value} "
        f"(it offers: {offered(engine)}); "
        f"replicas stay at minReplicas. Choose one of those metrics or another engine."
    )
