"""SLO verdicts of a load point when requests fail."""

from __future__ import annotations

import pytest
from modelfleet_api.benchmark import LoadPoint, Slos
from modelfleet_serve.bench.metrics import summarize
from modelfleet_serve.bench.records import RequestRecord

pytestmark = pytest.mark.unit
LOAD = LoadPoint(mode="closed-loop", concurrency=1, requests=4)


def record(index: int, *, error: str | None = None) -> RequestRecord:
    start = float(index)
    if error:
        return RequestRecord(
            index=index, warmup=False, scheduled=start, start=start, end=start + 0.001, error=error
        )
    chunks = [start + 0.05 + 0.01 * i for i in range(5)]
    return RequestRecord(
        index=index,
        warmup=False,
        scheduled=start,
        start=start,
        chunk_times=chunks,
        end=chunks[-1],
        output_tokens=5,
    )


def test_a_point_where_every_request_failed_meets_no_slo() -> None:
    summary = summarize(
        [record(i, error="HTTP 422") for i in range(4)], Slos(ttft_p95_ms=500, tpot_p95_ms=100), LOAD
    )
    assert summary["error_rate"] == 1.0
    assert summary["slo_checks"] == {"ttft": False, "tpot": False}
    assert summary["slo_met"] is False


def test_completed_requests_within_the_limits_meet_them() -> None:
    summary = summarize([record(i) for i in range(4)], Slos(ttft_p95_ms=500, tpot_p95_ms=100), LOAD)
    assert summary["slo_checks"] == {"ttft": True, "tpot": True}
    assert summary["slo_met"] is True
