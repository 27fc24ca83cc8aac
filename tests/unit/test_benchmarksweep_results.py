"""Reading a finished benchmark Job (the termination-message contract with ``modelfleet-bench``),
choosing the best points, scheduling and target readiness (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.benchmark import RESULTS_URI_MAX_LENGTH, LoadPoint, Slos
from modelfleet_api.benchmarksweep import (
    SINK_ERROR_MAX_LENGTH,
    SINK_ERRORS_MAX,
    BestPoint,
    PointMetrics,
    PointStatus,
)
from modelfleet_api.constants import PointPhase
from modelfleet_operator.benchmark.policies.best import best_per_slo, best_throughput
from modelfleet_operator.benchmark.policies.readiness import readiness
from modelfleet_operator.benchmark.policies.results import Outcome, outcome
from modelfleet_operator.benchmark.policies.schedule import plan, points_to_start
from modelfleet_serve.bench.exports import sink_error
from modelfleet_serve.bench.metrics import summarize
from modelfleet_serve.bench.records import RequestRecord
from modelfleet_serve.bench.results import (
    TERMINATION_MESSAGE_LIMIT,
    point_metrics,
    termination_message,
    write_termination_message,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)


def job(condition: str | None) -> dict[str, Any]:
    conditions = (
        [
            {
                "type": condition,
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        ]
        if condition
        else []
    )
    return {"metadata": {"name": "sw-point-0"}, "status": {"conditions": conditions}}


def pod(phase: str, message: str | None) -> dict[str, Any]:
    terminated = {"exitCode": 0 if phase == "Succeeded" else 1, **({"message": message} if message else {})}
    return {
        "metadata": {"name": "sw-point-0-abcde", "creationTimestamp": "2026-11-22T09:00:00Z"},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "bench", "state": {"terminated": terminated}}],
        },
    }


LOAD = LoadPoint(mode="closed-loop", concurrency=1, requests=4)


def records() -> list[RequestRecord]:
    """Four measured requests, 10 tokens each: TTFT 100 ms, 1 s end to end, over 2 s."""
    made = []
    for i in range(4):
        start = 0.5 * i
        made.append(
            RequestRecord(
                index=i,
                warmup=False,
                scheduled=start,
                start=start,
                chunk_times=[start + 0.1 + 0.1 * k for k in range(10)],
                end=start + 1.0,
                output_tokens=10,
            )
        )
    return made


def test_bench_termination_message_is_what_the_operator_reads(tmp_path: Path) -> None:
    summary = summarize(records(), Slos(ttft_p95_ms=200.0), LOAD)
    log = tmp_path / "termination-log"
    assert write_termination_message(point_metrics(summary), log) is False  # outside a container
    log.touch()
    assert write_termination_message(point_metrics(summary), log) is True
    message = log.read_text()
    assert len(message) < 4096 and "\n" not in message
    result = outcome(job("Complete"), [pod("Succeeded", message)], "bench")
    assert result is not None and result.phase is PointPhase.SUCCEEDED and result.metrics is not None
    figures = result.metrics
    assert figures.output_tokens_per_second == pytest.approx(40 / 2.5)
    assert figures.requests_per_second == pytest.approx(4 / 2.5)
    assert figures.ttft_p95_ms == pytest.approx(100.0)
    assert figures.e2e_p95_ms == pytest.approx(1000.0)
    assert figures.tpot_p95_ms == pytest.approx(100.0)
    assert (figures.error_rate, figures.meets_slos) == (0.0, True)
    assert figures.goodput == pytest.approx(4 / 2.5)


def test_point_figures_are_rounded_for_status_and_sinks_reported(tmp_path: Path) -> None:
    summary = summarize(records(), Slos(), LOAD)
    summary["output_tokens_per_s"] = 147.02765335156386
    summary["ttft_ms"]["p95"] = 12.3456789
    summary["error_rate"] = 1 / 3
    log = tmp_path / "termination-log"
    log.touch()
    metrics = point_metrics(summary, "az://results/ml/sw/point-0", ["pushgateway: URLError: refused"])
    write_termination_message(metrics, log)
    result = outcome(job("Complete"), [pod("Succeeded", log.read_text())], "bench")
    assert result is not None and result.metrics is not None
    figures = result.metrics
    assert (figures.output_tokens_per_second, figures.ttft_p95_ms) == (147.028, 12.346)
    assert figures.error_rate == 0.3333
    assert figures.results_uri == "az://results/ml/sw/point-0"
    assert figures.sink_errors == ["pushgateway: URLError: refused"]
    # no sink configured or none failed: neither field is in the message
    assert "sink" not in point_metrics(summary).model_dump_json(by_alias=True, exclude_none=True)


def test_sink_errors_are_one_short_line_of_ascii() -> None:
    error = ConnectionError("refused\n  Traceback (most recent call last):\n" + "\u00e9\x00" * 500)
    text = sink_error("blob", error)
    assert text.startswith("blob: ConnectionError: refused Traceback (most recent call last): ?")
    assert len(text) == SINK_ERROR_MAX_LENGTH and text.endswith("...") and text.isascii()
    assert "\n" not in text and "\x00" not in text
    assert sink_error("mlflow", RuntimeError("no mlflow")) == "mlflow: RuntimeError: no mlflow"


def test_the_worst_termination_message_fits_what_kubernetes_keeps() -> None:
    """Every figure at its widest, the longest blob prefix and every sink failing with the longest
    error, all of it characters JSON escapes (two bytes each): still within 4096 bytes, parseable, and
    nothing cut."""
    summary = summarize(records(), Slos(ttft_p95_ms=1.0), LOAD)
    for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
        summary[key]["p95"] = -123456789012.123456
    for key in ("output_tokens_per_s", "requests_per_s", "goodput_requests_per_s", "error_rate"):
        summary[key] = -123456789012.123456
    summary["achieved_request_rate"] = -123456789012.123456
    summary["schedule_lag_ms"] |= {"p50": -123456789012.123456, "p99": -123456789012.123456}
    summary["late_requests"], summary["held_load"] = 10_000_000, False
    summary["prefix_cache"]["hit_rate"] = 0.123456789
    uri = "https://acct.blob.core.windows.net/results/" + "%" * (RESULTS_URI_MAX_LENGTH - 43)
    worst = sink_error("pushgateway", ValueError('"\\' * 1000))
    assert len(worst) == SINK_ERROR_MAX_LENGTH
    metrics = point_metrics(summary, uri, [worst] * SINK_ERRORS_MAX)
    message = termination_message(metrics)
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT, len(message.encode())
    assert PointMetrics.model_validate_json(message) == metrics


def test_an_oversized_termination_message_drops_sink_details_not_figures() -> None:
    metrics = point_metrics(summarize(records(), Slos(), LOAD)).model_copy(
        update={"sink_errors": ["x" * 5000]}
    )
    message = termination_message(metrics)
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = PointMetrics.model_validate_json(message)
    assert parsed.sink_errors == ["1 sink(s) failed; the pod's log says why"]
    assert parsed.output_tokens_per_second == metrics.output_tokens_per_second


def test_running_job_has_no_outcome() -> None:
    assert outcome(job(None), [], "bench") is None


@pytest.mark.parametrize(
    ("condition", "pods", "expected"),
    [
        (
            "Complete",
            [],
            Outcome(
                phase=PointPhase.FAILED,
                reason="ResultMissing",
                message="The benchmark Job succeeded but its pod left no termination message with the "
                "results.",
            ),
        ),
        (
            "Complete",
            [pod("Succeeded", "done")],
            Outcome(
                phase=PointPhase.FAILED,
                reason="ResultUnparseable",
                message="Not a PointMetrics JSON document (Invalid JSON: expected value at line 1 column 1): "
                "done",
            ),
        ),
        (
            "Failed",
            [pod("Failed", "connection refused to http://x:8000")],
            Outcome(
                phase=PointPhase.FAILED,
                reason="JobFailed",
                message="BackoffLimitExceeded: Job has reached the specified backoff limit; "
                "pod said: connection refused to http://x:8000",
            ),
        ),
        (
            "Failed",
            [],
            Outcome(
                phase=PointPhase.FAILED,
                reason="JobFailed",
                message="BackoffLimitExceeded: Job has reached the specified backoff limit",
            ),
        ),
    ],
)
def test_failed_points_say_why(condition: str, pods: list[dict[str, Any]], expected: Outcome) -> None:
    assert outcome(job(condition), pods, "bench") == expected


def test_unknown_keys_in_the_message_are_refused() -> None:
    result = outcome(job("Complete"), [pod("Succeeded", json.dumps({"throughput": 3}))], "bench")
    assert result is not None and result.reason == "ResultUnparseable"


def point(
    index: int, tps: float | None, phase: PointPhase = PointPhase.SUCCEEDED, **metrics: Any
) -> PointStatus:
    return PointStatus(
        index=index,
        target=f"t{index // 3}",
        deployment=f"d{index // 3}",
        load=f"concurrency={index}",
        phase=phase,
        output_tokens_per_second=tps,
        goodput=(tps or 0) / 100,
        **metrics,
    )


def test_best_per_slo_and_best_throughput() -> None:
    points = [
        point(0, 100.0, ttft_p95_ms=50.0, tpot_p95_ms=10.0),
        point(1, 300.0, ttft_p95_ms=90.0, tpot_p95_ms=30.0),
        point(2, 900.0, ttft_p95_ms=400.0, tpot_p95_ms=20.0),
        point(3, 5000.0, PointPhase.FAILED),
        point(4, 300.0, ttft_p95_ms=80.0, tpot_p95_ms=25.0),  # ties with 1: the earlier point wins
    ]
    slos = Slos(ttft_p95_ms=100.0, tpot_p95_ms=25.0)
    assert best_throughput(points) == BestPoint(
        slo="throughput",
        point=2,
        target="t0",
        load="concurrency=2",
        output_tokens_per_second=900.0,
        goodput=9.0,
    )
    assert [(b.slo, b.point) for b in best_per_slo(points, slos, {})] == [("all", 4)]
    assert best_per_slo(points, Slos(), {}) == []
    assert best_throughput([point(0, None, PointPhase.FAILED)]) is None


def test_schedule_runs_one_point_per_target_within_the_parallelism() -> None:
    points = [point(i, None, PointPhase.PENDING) for i in range(9)]  # targets d0, d1, d2 with 3 points each
    points[0].phase = PointPhase.SUCCEEDED
    points[1].phase = PointPhase.RUNNING
    chosen = points_to_start(points, {"d0", "d1", "d2"}, max_parallel=2)
    assert [p.index for p in chosen] == [3]
    assert [p.index for p in points_to_start(points, {"d0", "d2"}, max_parallel=3)] == [6]
    scheduled = plan(points, ["d0", "d1", "d2"], max_parallel=2)
    assert (scheduled.active, scheduled.finished) == (["d0", "d1"], [])
    for p in points[:3]:
        p.phase = PointPhase.FAILED
    assert plan(points, ["d0", "d1", "d2"], max_parallel=2).active == ["d1", "d2"]
    assert plan(points, ["d0", "d1", "d2"], max_parallel=2).finished == ["d0"]


def deployment(phase: str, endpoint: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Available", "reason": "EngineCrashing", "message": "see the pod logs"}],
    }
    if endpoint:
        status["endpoint"] = endpoint
    return {"metadata": {"name": "d"}, "status": status}


def test_readiness() -> None:
    kw: dict[str, Any] = {"name": "d", "waiting_since": T0, "now": T0 + timedelta(minutes=5)}
    assert readiness(deployment("Ready", "http://d.ml.svc.cluster.local:8000/v1"), owned=True, **kw).ready
    at_zero = deployment("ScaledToZero", "http://d:8000/v1")
    waiting = readiness(at_zero, owned=False, **kw)
    assert not waiting.ready and waiting.failure_reason is None
    assert "the KEDA HTTP add-on does not route it" in waiting.message
    at_zero["status"]["interceptor"] = {
        "url": "http://keda-add-ons-http-interceptor-proxy.keda:8080/v1",
        "host": "d",
    }
    assert readiness(at_zero, owned=False, **kw).ready, "the points' requests wake it"
    late = readiness(
        deployment("ScaledToZero", "http://d:8000/v1"), owned=False, **{**kw, "now": T0 + timedelta(hours=2)}
    )
    assert late.failure_reason == c.REASON_POINT_TARGET_NOT_READY and "phase ScaledToZero" in late.message
    assert not readiness(deployment("Ready"), owned=True, **kw).ready  # no endpoint yet
    assert readiness(None, owned=True, **kw).failure_reason is None
    missing = readiness(None, owned=False, **kw)  # waited for: the sweep holds (ReferencesReady=False)
    assert (missing.ready, missing.failure_reason) == (False, None)
    failed = readiness(deployment("Failed"), owned=True, **kw)
    assert (failed.failure_reason, failed.message) == (
        "TargetFailed",
        "ModelDeployment d failed (EngineCrashing: see the pod logs).",
    )
    late = readiness(deployment("Deploying"), owned=True, timeout=timedelta(minutes=4), **kw)
    assert late.failure_reason == "TargetReadyTimeout" and "within 240 s (phase Deploying" in late.message
    assert readiness(deployment("Deploying"), owned=True, **kw).failure_reason is None


def test_point_metrics_is_the_metric_part_of_point_status() -> None:
    assert set(PointMetrics.model_fields) < set(PointStatus.model_fields)
