"""Whether the custom metrics API that the HPA fallback reads is served (pure).

Without KEDA a ModelDeployment scales with a HorizontalPodAutoscaler on a Pods metric, which the HPA
controller reads from ``custom.metrics.k8s.io``. Kubernetes serves no such API itself: a custom-metrics
adapter (prometheus-adapter, or the Azure Monitor adapter) registers an APIService for it, and the
aggregator marks that APIService Available once the adapter answers. The HPA controller takes the
newest version discovery offers (v1beta2, then v1beta1), so either one Available is enough.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP = "custom.metrics.k8s.io"
API_SERVICE_NAMES = (f"v1beta2.{GROUP}", f"v1beta1.{GROUP}")
"""The APIServices an adapter registers, newest first (prometheus-adapter registers both)."""


@dataclass(frozen=True, kw_only=True)
class CustomMetricsApi:
    served: bool
    detail: str
    """Which APIService serves it, or why none does (a clause, for a condition's message)."""


NOT_FOUND = CustomMetricsApi(served=False, detail=f"no APIService {' or '.join(API_SERVICE_NAMES)} exists")


def custom_metrics_api(api_services: Mapping[str, Mapping[str, Any] | None]) -> CustomMetricsApi:
    """From each APIService's summary (``common.indexes.api_service_summary``; None: absent)."""
    found = {name: api_services.get(name) for name in API_SERVICE_NAMES}
    available = [name for name, summary in found.items() if summary is not None and summary["available"]]
    if available:
        return CustomMetricsApi(served=True, detail=f"APIService {available[0]} is Available")
    present = {name: summary for name, summary in found.items() if summary is not None}
    if not present:
        return NOT_FOUND
    why = "; ".join(
        f"APIService {name} is not Available ({_why(summary)})" for name, summary in present.items()
    )
    return CustomMetricsApi(served=False, detail=why)


def _why(summary: Mapping[str, Any]) -> str:
    said = ": ".join(part for part in (summary.get("reason"), summary.get("message")) if part)
    return said or "the aggregator has not checked it yet"
