"""The result sinks of one load point, end to end: `modelfleet-bench run` (its real entry point, in its
own process) against the fake OpenAI server, uploading its files to Azure Blob (Azurite), pushing its
summary to a real Prometheus Pushgateway and logging a run to MLflow (a local file store); each sink is
read back. Sinks that fail (a container that does not exist, a Pushgateway nobody listens on) leave
the run successful, its files on disk and the errors in its termination message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_serve.bench.exports import flat_metrics
from modelfleet_serve.bench.fake_server import running
from modelfleet_serve.bench.results import point_metrics

from tests.runtime.conftest import AZURITE_ACCOUNT, free_port, scrape

pytestmark = pytest.mark.runtime

PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"
LOAD = {"mode": "open-loop", "requestRate": 50, "arrival": "constant", "requests": 12}
LOAD_LABEL = "rate=50/s (constant)"
"""A label with a slash: the Pushgateway grouping key carries it base64-encoded."""
TARGET = "sw-tiny-0"
JOB = "modelfleet-bench-test"


@pytest.fixture(scope="module")
def fake_server() -> Any:
    with running(ttft_ms=5.0, itl_ms=1.0) as url:
        yield url


@pytest.fixture
def blob_service(azurite: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    if not service.get_container_client("results").exists():
        service.create_container("results")
    return service


@pytest.fixture(autouse=True)
def mlflow_file_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlflow 3 refuses the file store unless asked (here and in the run); a real job uses a server."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def bench(tmp_path: Path, url: str, sinks: dict[str, Any], env: dict[str, str]) -> tuple[Path, str, str]:
    """Run one point through the CLI; (output dir, termination message, log). Fails on a non-zero exit."""
    output, termination = tmp_path / "results", tmp_path / "termination-log"
    config = {
        "targetUrl": url,
        "targetName": TARGET,
        "model": "fake",
        "protocol": "openai-chat",
        "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": 6}}},
        "load": LOAD,
        "outputDir": str(output),
        "sinks": sinks,
    }
    config_file = tmp_path / "bench.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "modelfleet_serve.bench.cli", "run", "--config", str(config_file)]
    ran = subprocess.run(
        [*command, "--termination-log", str(termination)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, f"modelfleet-bench exited {ran.returncode}:\n{ran.stderr[-6000:]}"
    return output, termination.read_text(), ran.stderr


def summary_of(output: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((output / "results.json").read_text())["summary"]
    return summary


def test_results_reach_blob_pushgateway_and_mlflow(
    tmp_path: Path, fake_server: str, azurite: str, blob_service: Any, pushgateway_url: str
) -> None:
    from mlflow.tracking import MlflowClient

    mlruns = tmp_path / "mlruns"
    prefix = "az://results/bench/ml/sw/point-3"
    sinks = {
        "blobUri": prefix,
        "pushgateway": {"url": pushgateway_url, "job": JOB},
        "mlflow": {"trackingUri": mlruns.as_uri(), "experiment": "sinks"},
    }
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite, "AZURE_STORAGE_ACCOUNT": AZURITE_ACCOUNT}
    output, message, _ = bench(tmp_path, fake_server, sinks, env)
    summary = summary_of(output)
    assert summary["completed"] == LOAD["requests"] and summary["errors"] == 0

    # the termination message: rounded figures, where the files went, no sink errors
    reported = PointMetrics.model_validate_json(message)
    assert reported == point_metrics(summary, prefix)
    assert reported.sink_errors is None and reported.results_uri == prefix
    assert reported.output_tokens_per_second == round(summary["output_tokens_per_s"], 3)

    # blob: exactly the three files under the point's prefix, byte for byte what is on disk
    container = blob_service.get_container_client("results")
    names = sorted(b.name for b in container.list_blobs(name_starts_with="bench/ml/sw/point-3/"))
    assert names == [f"bench/ml/sw/point-3/{n}" for n in ("requests.csv", "results.json", "trace.jsonl")]
    for name in ("results.json", "requests.csv", "trace.jsonl"):
        uploaded = container.download_blob(f"bench/ml/sw/point-3/{name}").readall()
        assert uploaded == (output / name).read_bytes(), name
    assert json.loads(container.download_blob("bench/ml/sw/point-3/results.json").readall())["summary"] == (
        summary
    )

    # the Pushgateway: one gauge per figure in the group job/target/load, values from results.json
    labels = f"instance=,job={JOB},load={LOAD_LABEL},target={TARGET}"
    pushed = {
        name.split("{")[0].removeprefix("modelfleet_bench_"): value
        for name, value in scrape(pushgateway_url).items()
        if name.startswith("modelfleet_bench_") and name.endswith(f"{{{labels}}}")
    }
    assert pushed == pytest.approx(flat_metrics(summary))
    assert {"ttft_ms_p95", "tpot_ms_p50", "itl_ms_p99", "e2e_ms_p50", "output_tokens_per_s"} <= set(pushed)

    # MLflow: one finished run with the point's parameters, every figure and both files
    client = MlflowClient(mlruns.as_uri())
    experiment = client.get_experiment_by_name("sinks")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert (run.info.run_name, run.info.status) == (f"{TARGET} {LOAD_LABEL}", "FINISHED")
    assert run.data.params == {
        "target": TARGET,
        "load": LOAD_LABEL,
        "model": "fake",
        "protocol": "openai-chat",
        "results_uri": prefix,
    }
    assert run.data.metrics == pytest.approx(flat_metrics(summary))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"results.json", "requests.csv", "trace.jsonl"}
    local = Path(client.download_artifacts(run.info.run_id, "results.json", str(tmp_path / "dl")))
    assert local.read_bytes() == (output / "results.json").read_bytes()


def test_failing_sinks_do_not_lose_the_point(
    tmp_path: Path, fake_server: str, azurite: str, blob_service: Any
) -> None:
    from mlflow.tracking import MlflowClient

    closed = free_port()  # nobody listens there
    mlruns = tmp_path / "mlruns"
    sinks = {
        "blobUri": "az://no-such-container/bench/ml/sw/point-0",
        "pushgateway": {"url": f"http://127.0.0.1:{closed}"},
        "mlflow": {"trackingUri": mlruns.as_uri(), "experiment": "still-logged"},
    }
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite, "AZURE_STORAGE_ACCOUNT": AZURITE_ACCOUNT}
    output, message, log = bench(tmp_path, fake_server, sinks, env)

    summary = summary_of(output)  # measured and on disk
    assert summary["completed"] == LOAD["requests"]
    assert len((output / "requests.csv").read_text().splitlines()) == LOAD["requests"] + 1
    reported = PointMetrics.model_validate_json(message)
    assert reported.output_tokens_per_second == round(summary["output_tokens_per_s"], 3)
    assert reported.results_uri is None  # the upload failed: no location to point at
    blob_error, push_error = reported.sink_errors or []
    assert blob_error.startswith("blob: ResourceNotFoundError: The specified container does not exist.")
    assert push_error.startswith("pushgateway: URLError: <urlopen error [Errno 111] Connection refused>")
    assert all(len(e) <= 256 for e in (blob_error, push_error))
    assert "2 sink(s) failed" in log

    # the sink that works still gets the point, without a results location
    client = MlflowClient(mlruns.as_uri())
    experiment = client.get_experiment_by_name("still-logged")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert "results_uri" not in run.data.params and run.info.status == "FINISHED"
