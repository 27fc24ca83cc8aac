"""The client's TTFT, TPOT and ITL against a server with known injected latencies (within 1 ms).

The truth is what the server actually did (its arrival and chunk-write times, on the host's shared
monotonic clock), which equals the injected latencies on a quiet host; on a busy host the server
drifts from them, and the client must still measure what happened."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_serve.bench.cli import run_benchmark

pytestmark = pytest.mark.runtime

TTFT_MS, ITL_MS, OUTPUT_TOKENS = 40.0, 8.0, 16
TOLERANCE_MS = 1.0
PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "modelfleet_serve.bench.fake_server", "--port", str(port),
         "--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS)]
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def config(url: str, protocol: str, load: dict[str, object], tmp_path: Path) -> BenchmarkRuntimeConfig:
    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": url,
            "model": "fake",
            "protocol": protocol,
            "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": OUTPUT_TOKENS}}},
            "load": load,
            "outputDir": str(tmp_path),
        }
    )


def truth_ms(timings: list[dict]) -> dict[str, np.ndarray]:
    sent = [np.array(t["sent"]) for t in timings]
    arrived = np.array([t["arrived"] for t in timings])
    return {
        "ttft_ms": (np.array([s[0] for s in sent]) - arrived) * 1000,
        "tpot_ms": np.array([(s[-1] - s[0]) / (len(s) - 1) for s in sent]) * 1000,
        "itl_ms": np.concatenate([np.diff(s) for s in sent]) * 1000,
    }


@pytest.mark.parametrize(
    ("protocol", "load"),
    [
        ("openai-chat", {"mode": "closed-loop", "concurrency": 2, "requests": 60, "warmupRequests": 4}),
        (
            "openai-completions",
            {"mode": "open-loop", "requestRate": 10, "arrival": "poisson", "requests": 60},
        ),
    ],
)
def test_latencies_match_the_injected_ones(
    fake_server: str, protocol: str, load: dict, tmp_path: Path
) -> None:
    document, records = run_benchmark(config(fake_server, protocol, load, tmp_path))
    truth = truth_ms(httpx.get(f"{fake_server}/timings").json()[-60:])  # the measured requests came last
    summary = document["summary"]
    assert summary["completed"] == 60 and summary["errors"] == 0
    assert summary["token_count_source"] == {"usage": 60}
    assert summary["output_tokens_total"] == 60 * OUTPUT_TOKENS
    for metric, values in truth.items():
        for stat in ("p50", "p99"):
            expected = float(np.percentile(values, int(stat[1:])))
            measured = summary[metric][stat]
            assert measured == pytest.approx(expected, abs=TOLERANCE_MS), (metric, stat, measured, expected)
    injected = {"ttft_ms": TTFT_MS, "tpot_ms": ITL_MS, "itl_ms": ITL_MS}
    print({m: (round(summary[m]["p50"], 3), round(summary[m]["p99"], 3), injected[m]) for m in injected})
    assert len([r for r in records if r.warmup]) == load.get("warmupRequests", 0)
