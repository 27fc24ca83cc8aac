"""The load split over several worker processes: one schedule, merged results, exact counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from modelfleet_api.benchmark import ArrivalProcess, BenchmarkRuntimeConfig
from modelfleet_serve.bench.cli import run_benchmark
from modelfleet_serve.bench.fake_server import running
from modelfleet_serve.bench.schedule import arrival_offsets

pytestmark = [pytest.mark.runtime, pytest.mark.timing]

PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"
OUTPUT_TOKENS = 4


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    with running(ttft_ms=5.0, itl_ms=2.0) as url:
        yield url


def config(url: str, load: dict[str, object], workers: int, tmp_path: Path) -> BenchmarkRuntimeConfig:
    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": url,
            "model": "fake",
            "protocol": "openai-completions",
            "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": OUTPUT_TOKENS}}},
            "load": load,
            "workers": workers,
            "outputDir": str(tmp_path),
        }
    )


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_open_loop_over_two_workers_sends_the_one_schedule(
    fake_server: str, arrival: str, tmp_path: Path
) -> None:
    rate, requests = 100.0, 300
    load = {"mode": "open-loop", "requestRate": rate, "arrival": arrival, "requests": requests,
            "warmupRequests": 6}  # fmt: skip
    bench = config(fake_server, load, 2, tmp_path)
    document, records = run_benchmark(bench)
    summary = document["summary"]
    assert document["workers"] == 2
    assert summary["requests"] == summary["completed"] == requests and summary["errors"] == 0
    assert summary["output_tokens_total"] == requests * OUTPUT_TOKENS
    measured = [r for r in records if not r.warmup]
    assert [r.index for r in measured] == list(range(requests))
    assert sorted(r.index for r in records if r.warmup) == list(range(6))
    # both workers began the measured phase at one instant: the planned arrivals are exactly the
    # single-process schedule, shifted to that instant
    scheduled = np.array([r.scheduled for r in measured])
    expected = arrival_offsets(rate, ArrivalProcess(arrival), bench.workload.seed, requests, None)
    assert np.allclose(scheduled - scheduled[0], expected, atol=1e-9)
    planned = (requests - 1) / expected[-1]
    assert summary["achieved_request_rate"] == pytest.approx(planned, rel=0.02)
    assert summary["schedule_lag_ms"]["p50"] < 10.0


def test_closed_loop_over_two_workers_meets_the_request_count(fake_server: str, tmp_path: Path) -> None:
    load = {"mode": "closed-loop", "concurrency": 5, "requests": 101}
    document, records = run_benchmark(config(fake_server, load, 2, tmp_path))
    assert document["summary"]["completed"] == 101 and document["summary"]["errors"] == 0
    assert [r.index for r in records] == list(range(101))
    assert all(r.ok and len(r.chunk_times) == OUTPUT_TOKENS for r in records)
