"""How many requests per second modelfleet-bench sustains against GuideLLM, and the latency each adds.

Both clients target the same local fake server (`modelfleet_serve.bench.fake_server`, 1 ms TTFT, 1 ms
per token, 4 output tokens, constant arrivals), in the same run, with the same prompts and the same
criterion: a rate is sustained when the achieved request rate, (n - 1) / (last start - first start), is
within 2 % of the requested one, the median scheduling delay (request start minus its planned arrival)
is under 10 ms and no request failed. For GuideLLM both are computed from the per-request timings in
its own JSON report (`request_start`, `targeted_start`). Rates double until one is not sustained,
then two bisection steps (geometric) refine the boundary; the figure is the highest sustained rate.
modelfleet-bench runs three times: one worker process, two, and its automatic count (the ratio uses the
automatic one, which is what a user gets).

Added latency: sequential requests (one at a time); per request, the client's TTFT minus the TTFT the
server recorded for that request (first chunk handed to the kernel minus the request's kernel arrival
stamp), p50 and p99.

    python benchmarks/bench_client_capacity.py [--json results.json]

GuideLLM runs from its own venv (`$GUIDELLM`, default ~/.cache/modelfleet/guidellm-venv/bin/guidellm)
through its current CLI (`guidellm run --backend/--profile/--constraint/--data/--output`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_serve.bench.cli import run_benchmark
from modelfleet_serve.bench.fake_server import running

GUIDELLM = os.environ.get("GUIDELLM", str(Path.home() / ".cache/modelfleet/guidellm-venv/bin/guidellm"))
PROMPTS = Path(__file__).parents[1] / "examples/bench/sharegpt-sample.jsonl"
SERVER_TTFT_MS = SERVER_ITL_MS = 1.0
OUTPUT_TOKENS = 4
SECONDS_PER_RATE = 4.0
FIRST_RATE = 25.0
MAX_RATE = 25_600.0
LATENCY_REQUESTS = 100

Measure = Callable[[float], tuple[float, float, int]]
"""rate -> (achieved rate, median scheduling delay in ms, failed requests)."""
WORKERS_USED: dict[float, int] = {}
"""modelfleet-bench's worker processes at each rate of the latest automatic run."""


def sustained(rate: float, achieved: float, delay_ms: float, errors: int) -> bool:
    return bool(abs(achieved - rate) / rate <= 0.02 and delay_ms < 10.0 and errors == 0)


def capacity(measure: Measure, label: str, rows: list[dict[str, Any]]) -> float:
    """Highest sustained rate: doubling, then two geometric bisection steps."""

    def attempt(rate: float) -> bool:
        achieved, delay_ms, errors = measure(rate)
        ok = sustained(rate, achieved, delay_ms, errors)
        workers = WORKERS_USED.pop(rate, None)
        rows.append({"client": label, "rate": rate, "achieved": achieved, "median_delay_ms": delay_ms,
                     "errors": errors, "sustained": ok, "workers": workers,
                     "load_average": os.getloadavg()[0]})  # fmt: skip
        print(f"  {label:26s} {rate:8.0f}/s achieved {achieved:9.1f}/s median delay {delay_ms:8.2f} ms "
              f"errors {errors:4d} workers {workers or '-'} {'ok' if ok else 'NOT sustained'}",
              flush=True)  # fmt: skip
        return ok

    low, high = 0.0, FIRST_RATE
    while high <= MAX_RATE and attempt(high):
        low, high = high, high * 2
    if low == 0.0 or high > MAX_RATE:
        return low
    for _ in range(2):
        middle = round(math.sqrt(low * high))
        if attempt(middle):
            low = middle
        else:
            high = middle
    return low


def our_config(url: str, load: dict[str, Any], workdir: Path, workers: int | None) -> BenchmarkRuntimeConfig:
    wire: dict[str, Any] = {
        "targetUrl": url,
        "model": "fake",
        "protocol": "openai-completions",
        "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": OUTPUT_TOKENS}}},
        "load": load,
        "outputDir": str(workdir),
    }
    if workers is not None:
        wire["workers"] = workers
    return BenchmarkRuntimeConfig.model_validate(wire)


def ours(url: str, workdir: Path, workers: int | None) -> Measure:
    def measure(rate: float) -> tuple[float, float, int]:
        load = {"mode": "open-loop", "requestRate": rate, "arrival": "constant",
                "requests": int(rate * SECONDS_PER_RATE)}  # fmt: skip
        document = run_benchmark(our_config(url, load, workdir, workers))[0]
        summary = document["summary"]
        WORKERS_USED[rate] = document["workers"]
        return (
            summary["achieved_request_rate"] or 0.0,
            summary["schedule_lag_ms"]["p50"],
            summary["errors"],
        )

    return measure


def guidellm_run(url: str, workdir: Path, profile: str, requests: int) -> dict[str, Any]:
    """One GuideLLM benchmark through its CLI; its JSON report."""
    report = workdir / "guidellm.json"
    report.unlink(missing_ok=True)
    command = [
        GUIDELLM, "run",
        "--backend", f"kind=openai_http,target={url},model=fake,request_format=/v1/completions,"
                     f"max_tokens={OUTPUT_TOKENS}",
        "--profile", profile,
        "--constraint", f"kind=max_requests,count={requests}",
        "--data", f"kind=text_file,path={prompt_lines(workdir, requests)}",
        "--output", f"kind=json,path={report}",
        "--disable-console",
    ]  # fmt: skip
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    if done.returncode != 0 or not report.exists():
        raise RuntimeError(
            f"guidellm exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return json.loads(report.read_text())


def prompt_lines(workdir: Path, count: int) -> Path:
    """The same prompts as modelfleet-bench's workload, one per line, repeated to `count` lines."""
    prompts = [json.loads(line)["conversations"][0]["value"] for line in PROMPTS.read_text().splitlines()]
    path = workdir / "prompts.txt"
    path.write_text("\n".join(prompts[i % len(prompts)] for i in range(count)) + "\n")
    return path


def guidellm_requests(report: dict[str, Any]) -> list[dict[str, Any]]:
    (benchmark,) = report["benchmarks"]
    return [r for kind in ("successful", "errored", "incomplete") for r in benchmark["requests"][kind]]


def guidellm(url: str, workdir: Path) -> Measure:
    def measure(rate: float) -> tuple[float, float, int]:
        requests = int(rate * SECONDS_PER_RATE)
        report = guidellm_run(url, workdir, f"kind=constant,rate={rate:g}", requests)
        done = guidellm_requests(report)
        timings = [r["info"]["timings"] for r in done]
        starts = np.sort([t["request_start"] for t in timings if t["request_start"] is not None])
        achieved = (starts.size - 1) / (starts[-1] - starts[0]) if starts.size > 1 else 0.0
        delays = [(t["request_start"] - t["targeted_start"]) * 1000.0 for t in timings if t["request_start"]]
        failed = len(report["benchmarks"][0]["requests"]["errored"]) + requests - len(starts)
        return float(achieved), float(np.median(delays)), failed

    return measure


def server_ttft_ms(url: str, count: int) -> np.ndarray:
    timings = sorted(httpx.get(f"{url}/timings").json()[-count:], key=lambda t: t["arrived"])
    return np.array([(t["sent"][0] - t["arrived"]) * 1000.0 for t in timings])


def added_latency(url: str, workdir: Path) -> dict[str, dict[str, float]]:
    """p50/p99 of client TTFT minus server TTFT, request by request, for both clients."""
    load = {"mode": "closed-loop", "concurrency": 1, "requests": LATENCY_REQUESTS}
    _, records = run_benchmark(our_config(url, load, workdir, 1))
    client = np.array([(r.chunk_times[0] - r.start) * 1000.0 for r in sorted(records, key=lambda r: r.start)])
    ours_added = client - server_ttft_ms(url, LATENCY_REQUESTS)
    report = guidellm_run(url, workdir, "kind=synchronous", LATENCY_REQUESTS)
    timings = sorted(
        (r["info"]["timings"] for r in guidellm_requests(report)), key=lambda t: t["request_start"]
    )
    theirs = np.array([(t["first_token_iteration"] - t["request_start"]) * 1000.0 for t in timings])
    theirs_added = theirs - server_ttft_ms(url, len(theirs))
    return {
        name: {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))}
        for name, v in (("modelfleet-bench", ours_added), ("guidellm", theirs_added))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("bench_client_capacity.json"))
    args = parser.parse_args()
    version = subprocess.run([GUIDELLM, "--version"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with running(SERVER_TTFT_MS, SERVER_ITL_MS) as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"fake server {url}: TTFT {SERVER_TTFT_MS} ms, ITL {SERVER_ITL_MS} ms, {OUTPUT_TOKENS} tokens; "
              f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f}; {version}", flush=True)  # fmt: skip
        added = added_latency(url, workdir)
        results = {
            "modelfleet-bench (1 worker)": capacity(ours(url, workdir, 1), "modelfleet-bench 1 worker", rows),
            "modelfleet-bench (2 workers)": capacity(
                ours(url, workdir, 2), "modelfleet-bench 2 workers", rows
            ),
            "modelfleet-bench (auto)": capacity(ours(url, workdir, None), "modelfleet-bench auto", rows),
            "guidellm": capacity(guidellm(url, workdir), "guidellm", rows),
        }
    load_after = os.getloadavg()
    best = results["modelfleet-bench (auto)"]
    ratio = best / results["guidellm"] if results["guidellm"] else math.inf
    print()
    print(f"{'client':30s} {'sustained req/s':>16s} {'added TTFT p50':>15s} {'p99':>9s}")
    for name, rate in results.items():
        lat = added["guidellm" if name == "guidellm" else "modelfleet-bench"]
        print(f"{name:30s} {rate:16.0f} {lat['p50_ms']:12.3f} ms {lat['p99_ms']:6.3f} ms")
    print(f"ratio modelfleet-bench (auto) / guidellm: {ratio:.1f}x  (target >= 2x)")
    print(f"load average: {load_before[0]:.1f} before, {load_after[0]:.1f} after (1-minute)")
    args.json.write_text(json.dumps({
        "server": {"ttft_ms": SERVER_TTFT_MS, "itl_ms": SERVER_ITL_MS, "output_tokens": OUTPUT_TOKENS},
        "guidellm_version": version, "cpus": os.cpu_count(), "sustained_rate": results, "ratio": ratio,
        "added_ttft_ms": added, "attempts": rows,
        "load_average": {"before": load_before, "after": load_after},
    }, indent=2))  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
