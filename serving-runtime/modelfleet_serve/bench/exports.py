"""The optional sinks of a load point's results: Azure Blob (the result files), Prometheus Pushgateway
(the summary as gauges) and MLflow (parameters, summary metrics, result files).

The point is measured and its files are on disk before any sink runs, so a sink never loses it: each
configured sink is tried on its own, a failure is logged and reported as ``SINK: error`` (cut to
``SINK_ERROR_MAX_LENGTH``), and the run still succeeds. ``export`` says where the files went and what
failed; ``modelfleet-bench run`` puts both into the termination message for the operator.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelfleet_api.benchmark import BenchmarkRuntimeConfig, MlflowSink, PushgatewaySink
from modelfleet_api.benchmarksweep import SINK_ERROR_MAX_LENGTH

from modelfleet_serve import blob

log = logging.getLogger("modelfleet_bench")

DISTRIBUTIONS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
SCALARS = ("requests_per_s", "output_tokens_per_s", "goodput_requests_per_s", "error_rate")
MLFLOW_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
"""MLflow's own defaults retry an unreachable server for minutes; the point is already measured, so
the Job fails fast instead (an explicit setting in the pod's environment wins)."""
PUSH_TIMEOUT_SECONDS = 30.0


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """`ttft_ms_p95`-style names for every distribution statistic, plus the scalar rates."""
    flat = {name: float(summary[name]) for name in SCALARS}
    for name in DISTRIBUTIONS:
        flat.update({f"{name}_{stat}": float(v) for stat, v in summary[name].items() if v is not None})
    return flat


def upload_results(uri: str, files: list[Path]) -> str:
    """Upload the files under the blob prefix `uri`; the prefix, as written in the config."""
    location = blob.parse_blob_uri(uri, "sinks.blobUri", require_path=False)
    if location is None:
        raise ValueError(f"sinks.blobUri: {uri} is not an Azure Blob URI")
    names = blob.upload_files(location, files)
    log.info("uploaded %s to container %s of %s", ", ".join(names), location.container, location.account_url)
    return uri.rstrip("/")


def push_to_gateway(sink: PushgatewaySink, summary: dict[str, Any], labels: dict[str, str]) -> None:
    """One gauge `modelfleet_bench_<metric>` per summary figure, PUT to the group `job` + `labels`."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    for name, value in flat_metrics(summary).items():
        Gauge(f"modelfleet_bench_{name}", f"modelfleet-bench {name}", registry=registry).set(value)
    push_to_gateway(
        sink.url, job=sink.job, registry=registry, grouping_key=labels, timeout=PUSH_TIMEOUT_SECONDS
    )


def log_to_mlflow(
    sink: MlflowSink, summary: dict[str, Any], params: dict[str, str], files: list[Path]
) -> None:
    """One run named `<target> <load>` in the experiment: params, flat metrics, the files as artifacts."""
    try:
        import mlflow
    except ImportError:
        raise RuntimeError("the mlflow package is not installed in this image") from None
    for name, value in MLFLOW_RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    mlflow.set_tracking_uri(sink.tracking_uri)
    mlflow.set_experiment(sink.experiment)
    with mlflow.start_run(run_name=f"{params['target']} {params['load']}"):
        mlflow.log_params(params)
        mlflow.log_metrics(flat_metrics(summary))
        for path in files:
            mlflow.log_artifact(str(path))


def sink_error(sink: str, error: BaseException) -> str:
    """`SINK: ErrorType: message` on one line of printable ASCII, at most SINK_ERROR_MAX_LENGTH long (the
    termination message that carries it is capped at 4 KiB, and a status is no place for a traceback)."""
    text = f"{sink}: {type(error).__name__}: {error}".encode("ascii", "replace").decode()
    text = re.sub(r"\s+", " ", re.sub(r"[^\x20-\x7e]", " ", text)).strip()
    if len(text) > SINK_ERROR_MAX_LENGTH:
        text = text[: SINK_ERROR_MAX_LENGTH - 3].rstrip() + "..."
    return text


@dataclass
class SinkReport:
    """What became of a point's sinks."""

    results_uri: str | None = None
    """Blob prefix the files were uploaded under (None: no blob sink, or it failed)."""
    errors: list[str] = field(default_factory=list)
    """One `SINK: error` per failed sink."""

    def attempt(self, sink: str, action: Callable[[], object]) -> object | None:
        """Run one sink; its failure is logged and recorded, never raised."""
        try:
            return action()
        except Exception as error:  # any failure of any sink: the measured point must survive it
            log.warning("sink %s failed (the results stay on disk and in the report): %s", sink, error)
            self.errors.append(sink_error(sink, error))
            return None


def export(config: BenchmarkRuntimeConfig, summary: dict[str, Any], files: list[Path]) -> SinkReport:
    """Try every configured sink of the point: blob first (MLflow then records where the files went)."""
    sinks, report = config.sinks, SinkReport()
    labels = {"target": config.target_name, "load": config.load.label}
    if sinks.blob_uri is not None:
        uri = sinks.blob_uri
        uploaded = report.attempt("blob", lambda: upload_results(uri, files))
        report.results_uri = uploaded if isinstance(uploaded, str) else None
    if sinks.pushgateway is not None:
        gateway = sinks.pushgateway
        report.attempt("pushgateway", lambda: push_to_gateway(gateway, summary, labels))
    if sinks.mlflow is not None:
        tracking = sinks.mlflow
        params = {**labels, "model": config.model, "protocol": str(config.protocol)}
        if report.results_uri is not None:
            params["results_uri"] = report.results_uri
        report.attempt("mlflow", lambda: log_to_mlflow(tracking, summary, params, files))
    return report
