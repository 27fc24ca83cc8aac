"""Rank 0's live observability and tracking, end to end: one short `torchrun -m modelfleet_train` run
whose Prometheus endpoint is scraped while it trains, whose pushes land on a stand-in Pushgateway,
whose MLflow run (a local file store) is read back with the MLflow client, and whose Weights & Biases
run (W&B's offline mode) and CometML experiment (Comet's offline experiment) are read back from the
files those libraries wrote. The run's JSON-lines file is the reference every channel must agree with,
for the training steps and for the held-out figures measured every EVAL_EVERY steps.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import threading
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from modelfleet_train.tracking import flatten

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
EVAL_EVERY = 10


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


@pytest.fixture(scope="module")
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


def jsonl_events(output: Path, event: str) -> dict[int, dict[str, Any]]:
    lines = (output / "training_metrics.jsonl").read_text().splitlines()
    return {row["step"]: row for row in map(json.loads, lines) if row["event"] == event}


@dataclass
class ObservedRun:
    output: Path
    mlruns: Path
    steps: dict[int, dict[str, Any]]
    """The run's JSON-lines step records: the reference."""
    evals: dict[int, dict[str, Any]]
    """Its held-out measurements."""
    scrapes: list[dict[str, float]]
    pushes: list[Push]


@pytest.fixture(scope="module")
def run(
    tiny: TinyAssets, tmp_path_factory: pytest.TempPathFactory, pushgateway: PushgatewayStandIn
) -> ObservedRun:
    """One single-process run with every channel on, its endpoint scraped while it trains."""
    work = tmp_path_factory.mktemp("observability")
    output, mlruns = work / "out", work / "mlruns"
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
        evaluation={"holdoutFraction": 0.1, "intervalSteps": EVAL_EVERY},
        topology={"nodes": 1, "gpusPerNode": 1},
        tracking={
            "mlflowUri": mlruns.as_uri(),
            "experiment": "observability",
            "pushgatewayUrl": pushgateway.url,
            "wandb": {"project": "tiny-wandb", "workspace": "team", "mode": "offline"},
            "comet": {"project": "tiny-comet", "workspace": "team", "mode": "offline"},
        },
    )
    env = runtime_env(work) | {
        # mlflow 3 refuses the file store unless asked; a real job uses a server
        "MLFLOW_ALLOW_FILE_STORE": "true",
        # W&B and Comet keep settings and caches under the home directory
        "HOME": str(work / "home"),
    }
    port = int(env["MODELFLEET_METRICS_PORT"])
    log_file = work / "train.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            torchrun_command(write_config(config, work / "config.yaml"), nproc=1),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    scrapes: list[dict[str, float]] = []
    try:
        deadline = time.monotonic() + 400
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
    steps, evals = jsonl_events(output, "step"), jsonl_events(output, "eval")
    assert sorted(steps) == list(range(1, MAX_STEPS + 1))
    assert sorted(evals) == list(range(EVAL_EVERY, MAX_STEPS + 1, EVAL_EVERY))
    return ObservedRun(output, mlruns, steps, evals, scrapes, pushgateway.pushes)


def test_metrics_endpoint_follows_the_run_as_it_trains(run: ObservedRun) -> None:
    """The step rises while training runs, and every series matches that step's record."""
    seen = [int(s["modelfleet_train_step"]) for s in run.scrapes]
    assert len(set(seen)) >= 2 and seen == sorted(seen), f"steps seen while training: {seen}"
    for sample in run.scrapes:
        record = run.steps[int(sample["modelfleet_train_step"])]
        assert sample["modelfleet_train_loss"] == pytest.approx(record["loss"])
        assert 0 < sample["modelfleet_train_loss"] < 2 * math.log(400)
        assert sample["modelfleet_train_learning_rate"] == pytest.approx(record["learning_rate"])
        assert 0 < sample["modelfleet_train_learning_rate"] <= PEAK_LR
        assert sample["modelfleet_train_tokens_per_second"] == pytest.approx(record["tokens_per_second"])
        assert sample["modelfleet_train_tokens_per_second"] > 0
        assert sample["modelfleet_train_samples_per_second"] == pytest.approx(record["samples_per_second"])
        assert sample["modelfleet_train_tokens_total"] == sum(
            run.steps[s]["tokens"] for s in range(1, record["step"] + 1)
        )
        measured = int(sample["modelfleet_train_eval_step"])
        if measured:  # a scrape between a step and its measurement still shows the previous one
            assert record["step"] - EVAL_EVERY <= measured <= record["step"]
            assert sample["modelfleet_train_eval_loss"] == pytest.approx(run.evals[measured]["loss"])


def test_pushgateway_gets_the_registry_under_the_jobs_grouping_key(run: ObservedRun) -> None:
    """The same registry, PUT under the job's grouping key, the last push at the end."""
    assert run.pushes, "nothing was pushed"
    assert {(p.method, p.path) for p in run.pushes} == {
        ("PUT", "/metrics/job/modelfleet-train/namespace/test/trainingjob/tiny")
    }
    final = run.pushes[-1].samples
    assert final["modelfleet_train_step"] == MAX_STEPS
    assert final["modelfleet_train_loss"] == pytest.approx(run.steps[MAX_STEPS]["loss"])
    assert final["modelfleet_train_tokens_total"] == sum(row["tokens"] for row in run.steps.values())
    assert final["modelfleet_train_checkpoints_total"] == 2
    assert final["modelfleet_train_eval_step"] == MAX_STEPS
    assert final["modelfleet_train_eval_loss"] == pytest.approx(run.evals[MAX_STEPS]["loss"])
    assert final["modelfleet_train_eval_perplexity"] == pytest.approx(run.evals[MAX_STEPS]["perplexity"])
    best = min(run.evals.values(), key=lambda row: row["loss"])
    assert (final["modelfleet_train_best_eval_loss"], final["modelfleet_train_best_eval_step"]) == (
        pytest.approx(best["loss"]),
        best["step"],
    )
    assert set(final) == set(run.scrapes[-1])


def assert_params_are_the_config(params: dict[str, Any]) -> None:
    assert str(params["method.type"]) == "full"
    assert str(params["hyperparameters.maxSteps"]) == str(MAX_STEPS)
    assert float(params["hyperparameters.learningRate"]) == PEAK_LR
    assert not any(key.startswith(("tracking.", "job.")) for key in params)


def test_mlflow_run_has_the_config_and_every_steps_metrics(
    run: ObservedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    client = MlflowClient(run.mlruns.as_uri())
    experiment = client.get_experiment_by_name("observability")
    assert experiment is not None
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "tiny" and logged.info.status == "FINISHED"
    assert_params_are_the_config(logged.data.params)
    for metric in ("loss", "learning_rate", "tokens_per_second"):
        history = {m.step: m.value for m in client.get_metric_history(logged.info.run_id, metric)}
        assert history == pytest.approx({step: row[metric] for step, row in run.steps.items()}), metric
    for metric in ("loss", "perplexity"):
        history = {m.step: m.value for m in client.get_metric_history(logged.info.run_id, f"eval_{metric}")}
        assert history == pytest.approx({step: row[metric] for step, row in run.evals.items()}), metric


def wandb_records(path: Path) -> Iterator[Any]:
    """The protobuf records of a W&B run's transaction log (`run-ID.wandb`).

    wandb 0.30 moved its reader into the Go core (`wandb sync` uploads, it does not print), so the
    test reads the file itself: a 7-byte header (":W&B", magic 0xBEE1, version), then LevelDB's log
    format, 32 KiB blocks of chunks (CRC-32 of type and data, length, type: full, first, middle,
    last), each whole record a `wandb_internal_pb2.Record`."""
    from wandb.proto import wandb_internal_pb2

    data, block, header = path.read_bytes(), 32 * 1024, 7
    ident, magic, _ = struct.unpack("<4sHB", data[:header])
    assert (ident, magic) == (b":W&B", 0xBEE1), "not a W&B transaction log"
    position, pending = header, b""
    while position + header <= len(data):
        if block - position % block < header:  # a block's tail too short for a chunk header is padding
            position += block - position % block
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + header])
        chunk = data[position + header : position + header + length]
        position += header + length
        if kind == 0:
            continue
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum, f"corrupt chunk at {position}"
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def test_wandb_offline_run_holds_the_config_and_every_steps_metrics(run: ObservedRun) -> None:
    (log_file,) = (run.output / "wandb").glob("offline-run-*/run-*.wandb")
    config: dict[str, Any] = {}
    history: dict[int, dict[str, float]] = {}
    exit_code = None
    for record in wandb_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            assert (record.run.project, record.run.entity, record.run.display_name) == (
                "tiny-wandb",
                "team",
                "tiny",
            )
            assert list(record.run.tags) == ["test"]
            config |= {item.key: json.loads(item.value_json) for item in record.run.config.update}
        elif kind == "history":
            values = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            history.setdefault(int(values["train/step"]), {}).update(values)
        elif kind == "exit":
            exit_code = record.exit.exit_code
    assert exit_code == 0
    assert_params_are_the_config(flatten({k: v for k, v in config.items() if k != "_wandb"}))
    assert sorted(history) == sorted(run.steps)
    for step, values in history.items():
        for metric in ("loss", "learning_rate", "tokens_per_second"):
            assert values[f"train/{metric}"] == pytest.approx(run.steps[step][metric]), (step, metric)
    for metric in ("loss", "perplexity"):
        logged = {step: values[f"eval/{metric}"] for step, values in history.items() if "eval/loss" in values}
        assert logged == pytest.approx({step: row[metric] for step, row in run.evals.items()}), metric


def test_comet_offline_experiment_holds_the_config_and_every_steps_metrics(run: ObservedRun) -> None:
    (archive,) = (run.output / "comet").glob("*.zip")
    with zipfile.ZipFile(archive) as opened:
        experiment = json.loads(opened.read("experiment.json"))
        messages = [json.loads(line) for line in opened.read("messages.json").decode().splitlines()]
    assert (experiment["project_name"], experiment["workspace"]) == ("tiny-comet", "team")
    params = {
        m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
        for m in messages
        if m["type"] == "parameter_msg" and m["payload"]["param"]["source"] == "manual"
    }
    assert_params_are_the_config(params)
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["Name"] == "tiny" and others["status"] == "FINISHED"
    metrics: dict[str, dict[int, float]] = {}
    for message in messages:
        if message["type"] == "metric_msg":
            metric = message["payload"]["metric"]
            metrics.setdefault(metric["metricName"], {})[metric["step"]] = metric["metricValue"]
    for metric in ("loss", "learning_rate", "tokens_per_second"):
        expected = {step: row[metric] for step, row in run.steps.items()}
        assert metrics[metric] == pytest.approx(expected), metric
    for metric in ("loss", "perplexity"):
        expected = {step: row[metric] for step, row in run.evals.items()}
        assert metrics[f"eval_{metric}"] == pytest.approx(expected), metric
