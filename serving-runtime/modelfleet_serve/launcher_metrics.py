"""The launcher's own Prometheus metrics (model download and engine lifecycle).

Request metrics (latency, tokens, queue) come from the engine's own `/metrics` where it has one
(vLLM, TGI, SGLang, LMDeploy, Triton on its metrics port); `transformers serve` has none.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Info, start_http_server


class LauncherMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.info = Info("modelfleet_serve_engine", "Engine and model served", registry=self.registry)
        self.download_seconds = Gauge(
            "modelfleet_serve_model_download_seconds", "Time spent resolving/downloading the model",
            registry=self.registry,
        )  # fmt: skip
        self.startup_seconds = Gauge(
            "modelfleet_serve_engine_startup_seconds", "From engine start to its first healthy answer",
            registry=self.registry,
        )  # fmt: skip
        self.ready = Gauge(
            "modelfleet_serve_engine_ready",
            "1 while the engine's health endpoint answers 200",
            registry=self.registry,
        )
        self.running = Gauge(
            "modelfleet_serve_engine_running", "1 while the engine process runs", registry=self.registry
        )

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        start_http_server(port, addr=host, registry=self.registry)
