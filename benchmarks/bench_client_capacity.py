"""How many requests per second modelfleet-bench sustains on a local server, and its added latency.

A rate is sustained when the achieved request rate is within 2 % of the requested one and the median
scheduling delay (how late requests leave against their planned arrival) is under 10 ms. Rates double
until one is not sustained; the figure is the highest sustained rate. Both clients target the same
fake server (`modelfleet_serve.bench.fake_server`). Also reported: the client's own added latency
(client TTFT minus the server's recorded TTFT, p50).

Not yet here: the same measurement for GuideLLM (target ratio >= 2x). GuideLLM 0.8.1 (PyPI, installed
in a throwaway venv) replaced `guidellm benchmark --rate-type/--rate/--max-requests` with
`guidellm run --profile/--constraint`, and its report layout changed with it; driving it needs that
CLI and report read properly, which is the next step.

    python benchmarks/bench_client_capacity.py
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_serve.bench.cli import run_benchmark

RATES = (25, 50, 100, 200, 400, 800, 1600)
SECONDS_PER_RATE = 4.0
OUTPUT_TOKENS = 4


def start_server(ttft_ms: float, itl_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelfleet_serve.bench.fake_server",
            "--port",
            str(port),
            "--ttft-ms",
            str(ttft_ms),
            "--itl-ms",
            str(itl_ms),
        ]
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1)
            return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("fake server did not start")


def ours(url: str, rate: float, workdir: Path) -> tuple[float, float]:
    """(achieved rate, median scheduling delay in ms) of modelfleet-bench at `rate`."""
    config = BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": url,
            "model": "fake",
            "protocol": "openai-completions",
            "workload": {
                "promptsFile": {
                    "uri": str(Path(__file__).parents[1] / "examples/bench/sharegpt-sample.jsonl"),
                    "outputTokens": {"mean": OUTPUT_TOKENS},
                }
            },
            "load": {
                "mode": "open-loop",
                "requestRate": rate,
                "arrival": "constant",
                "requests": int(rate * SECONDS_PER_RATE),
            },
            "outputDir": str(workdir),
        }
    )
    summary = run_benchmark(config)[0]["summary"]
    return summary["achieved_request_rate"] or 0.0, summary["scheduling_delay_ms"]["p50"] or 0.0


def capacity(measure, label: str) -> float:  # type: ignore[no-untyped-def]
    best = 0.0
    for rate in RATES:
        achieved, delay_ms = measure(rate)
        sustained = abs(achieved - rate) / rate <= 0.02 and delay_ms < 10
        print(
            f"{label:10s} rate {rate:6.0f}/s achieved {achieved:8.1f}/s median delay {delay_ms:7.2f} ms "
            f"{'ok' if sustained else 'NOT sustained'}",
            flush=True,
        )
        if not sustained:
            break
        best = rate
    return best


def added_latency_ms(url: str, workdir: Path) -> float:
    config = BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": url,
            "model": "fake",
            "protocol": "openai-completions",
            "workload": {
                "promptsFile": {
                    "uri": str(Path(__file__).parents[1] / "examples/bench/sharegpt-sample.jsonl"),
                    "outputTokens": {"mean": OUTPUT_TOKENS},
                }
            },
            "load": {"mode": "closed-loop", "concurrency": 1, "requests": 50},
            "outputDir": str(workdir),
        }
    )
    summary = run_benchmark(config)[0]["summary"]
    server = httpx.get(f"{url}/timings").json()[-50:]
    server_ttft = np.median([(t["sent"][0] - t["arrived"]) * 1000 for t in server])
    return float(summary["ttft_ms"]["p50"] - server_ttft)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    server, url = start_server(ttft_ms=1.0, itl_ms=1.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            added = added_latency_ms(url, workdir)
            print(f"modelfleet-bench added latency (TTFT p50, client minus server): {added:.3f} ms")
            sustained = capacity(lambda r: ours(url, r, workdir), "modelfleet")
            print(f"modelfleet-bench sustains {sustained:.0f} req/s (one worker process)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
