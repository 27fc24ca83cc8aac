"""Rank 0's training metrics: a Prometheus endpoint, a JSON-lines file and an optional Pushgateway push.

Pushes run on a background thread: `push_to_gateway` blocks up to its timeout on a slow or
unreachable gateway, and a stall on rank 0 would hold every other rank at the next collective.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from modelfleet_api import contract
from modelfleet_api.evaluation import EvaluationPoint, EvaluationStatus
from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway, start_http_server

from modelfleet_train.telemetry import Snapshot

log = logging.getLogger(__name__)

PEAK_FLOPS = {
    "H100": {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 494.7e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 156e12},
}
"""Dense peak FLOP/s per GPU (fp32 = TF32 tensor cores) by product name, for MFU."""
ENV_PEAK_TFLOPS = "MODELFLEET_PEAK_TFLOPS"
"""Override of the per-device peak, in TFLOP/s (devices not in PEAK_FLOPS, e.g. CPUs)."""


def peak_flops(gpu_names: list[str], precision: str) -> float | None:
    override = os.environ.get(ENV_PEAK_TFLOPS)
    if override:
        return float(override) * 1e12
    for name in gpu_names[:1]:
        for product, peaks in PEAK_FLOPS.items():
            if product in name:
                return peaks[precision]
    return None


def flops_per_token(parameters: int, layers: int, hidden: int, sequence_length: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward + backward) plus attention scores (PaLM, App. B)."""
    return 6 * parameters + 12 * layers * hidden * sequence_length


@dataclass
class StepRecord:
    step: int
    loss: float
    learning_rate: float
    grad_norm: float | None
    tokens_per_second: float
    samples_per_second: float
    mfu: float | None
    epoch: float | None
    tokens: int
    """Non-padding tokens of this step over all ranks."""
    step_seconds: float
    elapsed_seconds: float
    extra: dict[str, float]


class MetricsReporter:
    def __init__(
        self, jsonl_path: Path, port: int | None, pushgateway_url: str | None, grouping: dict[str, str]
    ) -> None:
        self.registry = CollectorRegistry()
        self.jsonl_path = jsonl_path
        self.grouping = grouping

        def g(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"modelfleet_train_{name}", doc, labels, registry=self.registry)

        self.step = g("step", "Optimizer steps done")
        self.loss = g("loss", "Training loss of the last step")
        self.learning_rate = g("learning_rate", "Learning rate of the last step")
        self.grad_norm = g("grad_norm", "Gradient norm before clipping")
        self.tokens_per_second = g("tokens_per_second", "Tokens per second over all ranks")
        self.samples_per_second = g("samples_per_second", "Sequences per second over all ranks")
        self.mfu = g("mfu", "Estimated model FLOPs utilisation (0-1)")
        self.cpu_percent = g("cpu_percent", "CPU use of the rank-0 process")
        self.rss_bytes = g("process_rss_bytes", "Resident memory of the rank-0 process")
        self.gpu_utilization = g("gpu_utilization_percent", "GPU utilisation (NVML)", ("gpu",))
        self.gpu_memory = g("gpu_memory_used_bytes", "GPU memory in use (NVML)", ("gpu",))
        self.checkpoint_seconds = g("checkpoint_seconds", "Duration of the last checkpoint save")
        self.checkpoints = Counter(
            "modelfleet_train_checkpoints", "Checkpoints saved", registry=self.registry
        )
        self.tokens = Counter("modelfleet_train_tokens", "Tokens trained on", registry=self.registry)
        self.eval_step = g("eval_step", "Step of the latest held-out measurement")
        self.eval_loss = g("eval_loss", "Held-out loss at eval_step")
        self.eval_perplexity = g("eval_perplexity", "exp(eval_loss), for language-modelling methods")
        self.eval_accuracy = g("eval_accuracy", "Share of held-out preference pairs ranked correctly")
        self.eval_margin = g("eval_margin", "Mean reward margin (chosen minus rejected) of held-out pairs")
        self.eval_seconds = g("eval_seconds", "Duration of the latest held-out measurement")
        self.best_eval_loss = g("best_eval_loss", "Lowest held-out loss so far")
        self.best_eval_step = g("best_eval_step", "Step of best_eval_loss")
        self.final_score = g(
            "final_score", "Scores of the final model (generation metrics, lm-eval)", ("metric",)
        )
        if port is not None:
            start_http_server(port, registry=self.registry)
        jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        self._pusher = _Pusher(partial(self._push_now, pushgateway_url)) if pushgateway_url else None

    @staticmethod
    def port_from_env() -> int:
        return int(os.environ.get(contract.ENV_METRICS_PORT, contract.METRICS_PORT))

    def record_step(self, record: StepRecord, telemetry: Snapshot) -> None:
        self.step.set(record.step)
        self.loss.set(record.loss)
        self.learning_rate.set(record.learning_rate)
        if record.grad_norm is not None:
            self.grad_norm.set(record.grad_norm)
        self.tokens_per_second.set(record.tokens_per_second)
        self.samples_per_second.set(record.samples_per_second)
        if record.mfu is not None:
            self.mfu.set(record.mfu)
        self.tokens.inc(record.tokens)
        self.cpu_percent.set(telemetry.cpu_percent)
        self.rss_bytes.set(telemetry.process_rss_bytes)
        for gpu in telemetry.gpus:
            self.gpu_utilization.labels(str(gpu.index)).set(gpu.utilization_percent)
            self.gpu_memory.labels(str(gpu.index)).set(gpu.memory_used_bytes)
        self.write_line({"event": "step", **asdict(record)})
        self.push()

    def record_checkpoint(self, step: int, uri: str, seconds: float, size_bytes: int) -> None:
        self.checkpoints.inc()
        self.checkpoint_seconds.set(seconds)
        self.write_line(
            {"event": "checkpoint", "step": step, "uri": uri, "seconds": seconds, "bytes": size_bytes}
        )
        self.push(force=True)

    def record_evaluation(self, point: EvaluationPoint, status: EvaluationStatus, seconds: float) -> None:
        self.eval_step.set(point.step)
        self.eval_loss.set(point.loss)
        if point.perplexity is not None:
            self.eval_perplexity.set(point.perplexity)
        if point.accuracy is not None:
            self.eval_accuracy.set(point.accuracy)
        if point.margin is not None:
            self.eval_margin.set(point.margin)
        self.eval_seconds.set(seconds)
        if status.best is not None:
            self.best_eval_loss.set(status.best.loss)
            self.best_eval_step.set(status.best.step)
        self.write_line({"event": "eval", **point.model_dump(), "seconds": seconds})
        self.push(force=True)

    def record_final_scores(self, step: int, scores: dict[str, float]) -> None:
        for name, value in scores.items():
            self.final_score.labels(name).set(value)
        self.write_line({"event": "final_scores", "step": step, "scores": scores})
        self.push(force=True)

    def write_line(self, payload: dict[str, Any]) -> None:
        with open(self.jsonl_path, "a") as handle:
            handle.write(json.dumps({"time": time.time(), **payload}) + "\n")

    def push(self, force: bool = False) -> None:
        """Ask for a push of the registry (throttled unless forced); returns at once."""
        if self._pusher:
            self._pusher.request(force)

    def close(self) -> None:
        """Push the final values and stop the pushing thread."""
        if self._pusher:
            self._pusher.close()

    def _push_now(self, url: str) -> None:
        try:
            push_to_gateway(
                url,
                job="modelfleet-train",
                grouping_key=self.grouping,
                registry=self.registry,
                timeout=5,
            )
        except Exception as error:
            log.warning("pushgateway push failed (training continues): %s", error)


class _Pusher:
    """Runs `push` on a daemon thread: at most every `interval` seconds, at once when forced, and a
    last time on close. Requests made while a push is in flight coalesce into the next one."""

    def __init__(self, push: Callable[[], None], interval_seconds: float = 15.0) -> None:
        self._push, self.interval = push, interval_seconds
        self._last_push = 0.0
        self._lock = threading.Condition()
        self._due = self._closed = False
        self._thread = threading.Thread(target=self._run, name="pushgateway", daemon=True)
        self._thread.start()

    def request(self, force: bool) -> None:
        with self._lock:
            if force or time.monotonic() - self._last_push >= self.interval:
                self._due = True
                self._lock.notify()

    def close(self, timeout_seconds: float = 15.0) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=timeout_seconds)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._due)
                self._due, closed = False, self._closed
                self._last_push = time.monotonic()
            self._push()
            if closed:
                return
