"""Optional exports of a load point's summary: Prometheus Pushgateway and MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelfleet_api.benchmark import MlflowSink, PushgatewaySink

DISTRIBUTIONS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
SCALARS = ("requests_per_s", "output_tokens_per_s", "goodput_requests_per_s", "error_rate")


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """`ttft_ms_p95`-style names for every distribution statistic, plus the scalar rates."""
    flat = {name: float(summary[name]) for name in SCALARS}
    for name in DISTRIBUTIONS:
        flat.update({f"{name}_{stat}": float(v) for stat, v in summary[name].items() if v is not None})
    return flat


def push_to_gateway(sink: PushgatewaySink, summary: dict[str, Any], labels: dict[str, str]) -> None:
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    for name, value in flat_metrics(summary).items():
        Gauge(f"modelfleet_bench_{name}", f"modelfleet-bench {name}", registry=registry).set(value)
    push_to_gateway(sink.url, job=sink.job, registry=registry, grouping_key=labels)


def log_to_mlflow(
    sink: MlflowSink, summary: dict[str, Any], params: dict[str, str], files: list[Path]
) -> None:
    try:
        import mlflow
    except ImportError:
        raise RuntimeError("sinks.mlflow: the mlflow package is not installed in this image") from None
    mlflow.set_tracking_uri(sink.tracking_uri)
    mlflow.set_experiment(sink.experiment)
    with mlflow.start_run(run_name=f"{params['target']} {params['load']}"):
        mlflow.log_params(params)
        mlflow.log_metrics(flat_metrics(summary))
        for path in files:
            mlflow.log_artifact(str(path))
