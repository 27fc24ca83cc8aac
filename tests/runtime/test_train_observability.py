"""Rank 0's live observability, end to end: one short `torchrun -m modelfleet_train` run whose
Prometheus endpoint is scraped while it trains, whose pushes land on a stand-in Pushgateway, and whose
MLflow run (a local file store) is read back with the MLflow client. The run's JSON-lines file is the
reference every channel must agree with."""

from __future__ import annotations

import json
import math
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import (
    TinyAssets,
    parse_exposition,
    runtime_config,
    runtime_env,
    torchrun_command,
    write_config,
)

pytestmark = pytest.mark.runtime

MAX_STEPS = 40
PEAK_LR = 3e-3


@dataclass
class Push:
    method: str
    path: str
    samples: dict[str, float]


@dataclass
class PushgatewayStandIn:
    """A local HTTP server recording what clients push, answering as the Pushgateway does."""

    url: str
    pushes: list[Push] = field(default_factory=list)


@pytest.fixture
def pushgateway() -> Iterator[PushgatewayStandIn]:
    stand_in = PushgatewayStandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            stand_in.pushes.append(Push(self.command, self.path, parse_exposition(body)))
            self.send_response(200)
            self.end_headers()

        do_PUT = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def scrape(port: int) -> dict[str, float] | None:
    """One scrape of rank 0's endpoint; None while it is not (or no longer) listening."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return parse_exposition(response.read().decode())
    except OSError:
        return None


def jsonl_steps(output: Path) -> dict[int, dict[str, Any]]:
    lines = (output / "training_metrics.jsonl").read_text().splitlines()
    return {row["step"]: row for row in map(json.loads, lines) if row["event"] == "step"}


def test_rank0_serves_pushes_and_tracks_a_training_run(
    tiny: TinyAssets, tmp_path: Path, pushgateway: PushgatewayStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    output, mlruns = tmp_path / "out", tmp_path / "mlruns"
    config = runtime_config(
        tiny,
        output,
        hyperparameters={
            "learningRate": PEAK_LR,
            "lrSchedule": "cosine",
            "maxSteps": MAX_STEPS,
            "perDeviceBatchSize": 4,
            "sequenceLength": 64,
            "seed": 7,
        },
        checkpoint={"intervalSteps": MAX_STEPS // 2, "keepLast": 1},
        topology={"nodes": 1, "gpusPerNode": 1},
        tracking={
            "mlflowUri": mlruns.as_uri(),
            "experiment": "observability",
            "pushgatewayUrl": pushgateway.url,
        },
    )
    # mlflow 3 refuses the file store unless asked (here and in the run); a real job uses a server
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    env = runtime_env(tmp_path)
    port = int(env["MODELFLEET_METRICS_PORT"])
    log_file = tmp_path / "train.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            torchrun_command(write_config(config, tmp_path / "config.yaml"), nproc=1),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    scrapes: list[dict[str, float]] = []
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            sample = scrape(port)
            if sample is not None and sample.get("modelfleet_train_step", 0) > 0:
                scrapes.append(sample)
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait()
    assert process.returncode == 0, f"training exited {process.returncode}:\n{log_file.read_text()[-6000:]}"
    steps = jsonl_steps(output)
    assert sorted(steps) == list(range(1, MAX_STEPS + 1))

    # the live endpoint: the step rises while training runs, and every series matches that step's record
    seen = [int(s["modelfleet_train_step"]) for s in scrapes]
    assert len(set(seen)) >= 2 and seen == sorted(seen), f"steps seen while training: {seen}"
    for sample in scrapes:
        record = steps[int(sample["modelfleet_train_step"])]
        assert sample["modelfleet_train_loss"] == pytest.approx(record["loss"])
        assert 0 < sample["modelfleet_train_loss"] < 2 * math.log(400)
        assert sample["modelfleet_train_learning_rate"] == pytest.approx(record["learning_rate"])
        assert 0 < sample["modelfleet_train_learning_rate"] <= PEAK_LR
        assert sample["modelfleet_train_tokens_per_second"] == pytest.approx(record["tokens_per_second"])
        assert sample["modelfleet_train_tokens_per_second"] > 0
        assert sample["modelfleet_train_samples_per_second"] == pytest.approx(record["samples_per_second"])
        assert sample["modelfleet_train_tokens_total"] == sum(
            steps[s]["tokens"] for s in range(1, record["step"] + 1)
        )

    # the Pushgateway: the same registry, PUT under the job's grouping key, the last push at the end
    assert pushgateway.pushes, "nothing was pushed"
    assert {(p.method, p.path) for p in pushgateway.pushes} == {
        ("PUT", "/metrics/job/modelfleet-train/namespace/test/trainingjob/tiny")
    }
    final = pushgateway.pushes[-1].samples
    assert final["modelfleet_train_step"] == MAX_STEPS
    assert final["modelfleet_train_loss"] == pytest.approx(steps[MAX_STEPS]["loss"])
    assert final["modelfleet_train_tokens_total"] == sum(row["tokens"] for row in steps.values())
    assert final["modelfleet_train_checkpoints_total"] == 2
    assert set(final) == set(scrapes[-1])

    # MLflow: one finished run named after the job, the config as params, every step's metrics
    client = MlflowClient(mlruns.as_uri())
    experiment = client.get_experiment_by_name("observability")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["method.type"] == "full"
    assert params["hyperparameters.maxSteps"] == str(MAX_STEPS)
    assert params["hyperparameters.learningRate"] == str(PEAK_LR)
    assert not any(key.startswith(("tracking.", "job.")) for key in params)
    for metric in ("loss", "learning_rate", "tokens_per_second"):
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, metric)}
        assert history == pytest.approx({step: row[metric] for step, row in steps.items()}), metric
