"""Progress publishing (throttled, non-fatal), Prometheus/JSON-lines metrics, MFU, telemetry."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api import contract
from modelfleet_api.evaluation import EvaluationPoint, EvaluationStatus
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_train.metrics import MetricsReporter, StepRecord, flops_per_token, peak_flops
from modelfleet_train.progress import ProgressPublisher
from modelfleet_train.telemetry import Snapshot, TelemetrySampler
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.unit


def progress(step: int) -> TrainingProgress:
    return TrainingProgress(step=step, total_steps=100, loss=1.0 / step, updated_at=datetime.now(UTC))


class RecordingPatch:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[int] = []
        self.fail = fail
        self.called = threading.Event()

    def __call__(self, value: TrainingProgress) -> None:
        self.sent.append(value.step)
        self.called.set()
        if self.fail:
            raise ConnectionError("API server unreachable")


def test_progress_is_throttled_but_forced_updates_and_the_last_value_go_out() -> None:
    patch = RecordingPatch()
    publisher = ProgressPublisher(patch, interval_seconds=60)
    publisher.submit(progress(1))  # first: the interval since "never" has passed
    assert patch.called.wait(5)
    for step in range(2, 10):
        publisher.submit(progress(step))  # within the interval: held back
    time.sleep(0.2)
    assert patch.sent == [1]
    publisher.submit(progress(10), force=True)  # a checkpoint
    deadline = time.monotonic() + 5
    while patch.sent != [1, 10] and time.monotonic() < deadline:
        time.sleep(0.01)
    publisher.submit(progress(11))  # held back again
    time.sleep(0.2)
    assert patch.sent == [1, 10]
    publisher.close()  # the end of the run sends what is pending
    assert patch.sent == [1, 10, 11]


def test_progress_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    patch = RecordingPatch(fail=True)
    publisher = ProgressPublisher(patch, interval_seconds=0)
    publisher.submit(progress(1))
    publisher.close()
    assert patch.sent == [1]
    assert "publishing progress failed (training continues): API server unreachable" in caplog.text


def test_no_publisher_outside_a_training_job_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.ENV_PROGRESS_CONFIGMAP, raising=False)
    assert ProgressPublisher.from_env() is None


def test_a_training_job_pod_without_the_kubernetes_client_stops_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An image without the client would train with no progress and be restarted as stalled, over and
    over: the worker refuses to start instead, naming what is missing."""
    monkeypatch.setenv(contract.ENV_PROGRESS_CONFIGMAP, "job-progress")
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # import kubernetes -> ImportError
    with pytest.raises(RuntimeError, match=r"kubernetes client is not installed .*train extra"):
        ProgressPublisher.from_env()


def step_record(step: int) -> StepRecord:
    return StepRecord(
        step=step,
        loss=2.5,
        learning_rate=1e-4,
        grad_norm=0.7,
        tokens_per_second=1000.0,
        samples_per_second=4.0,
        mfu=0.4,
        epoch=0.1,
        tokens=512,
        step_seconds=0.512,
        elapsed_seconds=2.0,
        extra={},
    )


def test_metrics_are_served_in_prometheus_format_and_appended_as_json_lines(tmp_path: Path) -> None:
    reporter = MetricsReporter(tmp_path / "m.jsonl", port=None, pushgateway_url=None, grouping={})
    reporter.record_step(step_record(3), Snapshot(cpu_percent=50.0, process_rss_bytes=1 << 20))
    reporter.record_checkpoint(3, "/ckpt/step-00000003", seconds=0.5, size_bytes=10)
    exposition = generate_latest(reporter.registry).decode()
    for line in (
        "modelfleet_train_step 3.0",
        "modelfleet_train_loss 2.5",
        "modelfleet_train_mfu 0.4",
        "modelfleet_train_tokens_total 512.0",
        "modelfleet_train_checkpoints_total 1.0",
    ):
        assert line in exposition
    events = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["step", "checkpoint"]
    assert events[0]["loss"] == 2.5 and events[1]["uri"] == "/ckpt/step-00000003"


def test_held_out_figures_and_final_scores_are_gauges_and_json_lines(tmp_path: Path) -> None:
    reporter = MetricsReporter(tmp_path / "m.jsonl", port=None, pushgateway_url=None, grouping={})
    best = EvaluationPoint(step=4, loss=1.5, perplexity=4.4817)
    latest = EvaluationPoint(step=6, loss=1.75, perplexity=5.7546)
    reporter.record_evaluation(latest, EvaluationStatus(latest=latest, best=best), seconds=0.25)
    reporter.record_final_scores(6, {"bleu": 12.5, "lm-eval/arc_easy/acc": 0.5})
    exposition = generate_latest(reporter.registry).decode()
    for line in (
        "modelfleet_train_eval_step 6.0",
        "modelfleet_train_eval_loss 1.75",
        "modelfleet_train_eval_perplexity 5.7546",
        "modelfleet_train_best_eval_loss 1.5",
        "modelfleet_train_best_eval_step 4.0",
        "modelfleet_train_eval_seconds 0.25",
        'modelfleet_train_final_score{metric="bleu"} 12.5',
        'modelfleet_train_final_score{metric="lm-eval/arc_easy/acc"} 0.5',
    ):
        assert line in exposition
    events = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["eval", "final_scores"]
    assert events[0] | {"time": 0} == {
        "time": 0,
        "event": "eval",
        "step": 6,
        "loss": 1.75,
        "perplexity": 5.7546,
        "accuracy": None,
        "margin": None,
        "seconds": 0.25,
    }


PUSH_SECONDS = 1.0
"""How long the slow stand-in Pushgateway takes to answer a push."""


@dataclass
class SlowPushgateway:
    url: str = ""
    pushes: list[dict[str, float]] = field(default_factory=list)
    receiving: threading.Event = field(default_factory=threading.Event)
    """Set once a push has arrived (and is being answered slowly)."""


@pytest.fixture
def slow_pushgateway() -> Iterator[SlowPushgateway]:
    """A local Pushgateway stand-in that answers each push after PUSH_SECONDS."""
    gateway = SlowPushgateway()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            gateway.receiving.set()
            time.sleep(PUSH_SECONDS)
            gateway.pushes.append(
                {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gateway.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()


def test_pushes_never_wait_on_the_gateway_and_the_final_values_go_out(
    tmp_path: Path, slow_pushgateway: SlowPushgateway
) -> None:
    gateway = slow_pushgateway
    reporter = MetricsReporter(
        tmp_path / "m.jsonl", port=None, pushgateway_url=gateway.url, grouping={"a": "b"}
    )
    reporter.record_step(step_record(1), Snapshot())  # the first push is due at once
    assert gateway.receiving.wait(5)
    started = time.monotonic()  # while the gateway takes its time over that push:
    for step in (2, 3):
        reporter.record_step(step_record(step), Snapshot())  # within the interval: no push
    reporter.record_checkpoint(3, "/ckpt/step-00000003", seconds=0.5, size_bytes=10)  # forced
    assert time.monotonic() - started < PUSH_SECONDS / 2
    reporter.close()
    # the checkpoint's forced push, queued behind the first, and close's final one coalesce
    assert [p["modelfleet_train_step"] for p in gateway.pushes] == [1, 3]
    assert gateway.pushes[-1]["modelfleet_train_checkpoints_total"] == 1


def test_an_unreachable_pushgateway_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        url = f"http://127.0.0.1:{closed.server_port}"  # nothing listens once the block ends
    reporter = MetricsReporter(tmp_path / "m.jsonl", port=None, pushgateway_url=url, grouping={})
    reporter.record_step(step_record(1), Snapshot())
    reporter.close()
    assert "pushgateway push failed (training continues)" in caplog.text


def test_mfu_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELFLEET_PEAK_TFLOPS", raising=False)
    assert (
        flops_per_token(parameters=1000, layers=2, hidden=8, sequence_length=16) == 6 * 1000 + 12 * 2 * 8 * 16
    )
    assert peak_flops(["NVIDIA H100 NVL"], "bf16") == 989.4e12
    assert peak_flops([], "bf16") is None
    monkeypatch.setenv("MODELFLEET_PEAK_TFLOPS", "2.5")
    assert peak_flops([], "fp32") == 2.5e12


def test_telemetry_samples_in_the_background() -> None:
    sampler = TelemetrySampler(interval_seconds=0.05).start()
    try:
        deadline = time.monotonic() + 5
        while sampler.latest().process_rss_bytes == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sampler.latest().process_rss_bytes > 0
        assert sampler.latest().gpus == []  # no NVML on this machine
    finally:
        sampler.stop()
