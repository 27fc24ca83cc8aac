"""Deterministic names of a ModelDeployment's children, so every reconcile finds what an earlier one made.

The Service carries the ModelDeployment's own name: it is the endpoint clients use, whatever tracks
sit behind it. Each track has its own Deployment and runtime-config ConfigMap (the canary may serve
another model or engine), and its own Service as a weighted HTTPRoute backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet_api.contract import SERVE_PORT


@dataclass(frozen=True)
class ChildNames:
    model_deployment: str
    namespace: str

    @property
    def service(self) -> str:
        return self.model_deployment

    def deployment(self, track: str) -> str:
        return f"{self.model_deployment}-{track}"

    def config_map(self, track: str) -> str:
        return f"{self.model_deployment}-{track}-config"

    def track_service(self, track: str) -> str:
        return f"{self.model_deployment}-{track}"

    @property
    def pod_disruption_budget(self) -> str:
        return self.model_deployment

    @property
    def autoscaler(self) -> str:
        """Name of the ScaledObject or HorizontalPodAutoscaler (they never coexist)."""
        return self.model_deployment

    @property
    def http_scaled_object(self) -> str:
        """The KEDA HTTP add-on's HTTPScaledObject: not the ScaledObject's name, which the add-on would
        take for one it made itself."""
        return f"{self.model_deployment}-http"

    @property
    def hosts(self) -> list[str]:
        """The names clients address the Service by, which the add-on's interceptor routes on (the
        ``Host`` header, port stripped)."""
        return [self.host, f"{self.service}.{self.namespace}.svc", f"{self.service}.{self.namespace}"]

    def pod_monitor(self, track: str) -> str:
        return f"{self.model_deployment}-{track}"

    @property
    def http_route(self) -> str:
        return self.model_deployment

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"

    def endpoint(self, api_path: str) -> str:
        """In-cluster base URL of the API (``/v1`` for OpenAI-compatible engines, ``/v2`` for KServe)."""
        return f"http://{self.host}:{SERVE_PORT}{api_path}"
