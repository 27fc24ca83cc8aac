"""modelfleet-bench against GuideLLM, AIPerf and `vllm bench serve`, in one run, on one neutral server.

The referee is `benchmarks/neutral_server.py`, a small OpenAI-compatible streaming server of this
benchmark's own (not the project's fake server, which the client was tuned against). It counts every
request's arrival (kernel receive stamp) and stamps every chunk it sends (kernel transmit stamp), on the
host's monotonic clock. Every client is installed from PyPI into its own cached virtualenv and run
through its own CLI, as a user runs it (`peers.py`; one that will not install is skipped, saying why),
with the same prompts, 4 output tokens per request, OpenAI completions streamed.

Three measurements, each a ratio against the others in the same run:

- **Sustained rate, as the server counts it.** Open loop, constant arrivals, `RATE_SECONDS` worth of
  requests per attempt. A rate is sustained when the server saw every request arrive and complete, at a
  rate within 1 % of the one asked for, with at most 1 % of arrivals more than 10 ms behind an evenly
  spaced schedule (fitted to the arrivals by their median offset). Rates double from `FIRST_RATE` until
  one is not sustained, then bisect geometrically to 20 % (the search of `modelfleet_api.loadsearch`);
  the clients take turns, one attempt each per round, so a change in the machine's load touches them
  alike. The figure is the highest sustained rate.
  For modelfleet-bench the run also checks its own claims: at every rate where it says it held the load
  (`held_load`), the rate the server counted is within 1 % of the rate it reports (`achieved_request_rate`).
- **Timing error at 8 concurrent requests** (closed loop, `ACCURACY_REQUESTS` requests, a server with
  `ACCURACY_TTFT_MS` and `ACCURACY_ITL_MS`): per request, the client's TTFT minus the server's (first
  chunk sent minus request arrived), and the client's mean inter-token latency minus the server's
  (mean gap between its chunks' send stamps); p50 and p99 of the absolute error. Requests are paired
  with the server's records by the `r<N>` the server writes into its first chunk (AIPerf: by its
  `X-Request-ID`). modelfleet-bench runs in-process here (its records keep the response text).
- **Client CPU per 1,000 requests**: at `CPU_RATE` (a rate every client sustains; `--cpu-rate` for
  another: at 100/s a client's loop wakes for nearly every chunk, at a higher rate it handles several
  events per wake-up, so the cost per request depends on the rate), two runs of
  `CPU_REQUESTS` requests; the difference of the CPU the whole client process tree used, per 1,000
  requests of difference (start-up cancels out, when it costs the same twice). The server's own CPU
  per 1,000 requests is shown too. And, robust to a start-up that varies by more than the difference
  (vllm bench serve's imports take tens of CPU seconds on a loaded machine), the CPU of the load
  phase alone: the process tree's CPU sampled while it runs (`cputrace`), from the server's first
  arrival to its last chunk, per 1,000 requests the server saw (start-up and the final report left out).

The machine's load average is recorded before, after and at every attempt: seven engineers share its 2
cores, so run it when `/proc/loadavg` is low and read the figures with it.

    python -m benchmarks.bench_client_capacity [--json results.json] [--only modelfleet-bench,guidellm]

(from the repo root, with the project's venv).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from modelfleet_api import loadsearch
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, LoadSearch
from modelfleet_serve.bench.point import measure

from benchmarks import neutral_server
from benchmarks.cputrace import cpu_between
from benchmarks.peers import (
    AIPerf,
    Client,
    ClientRecord,
    GuideLLM,
    Job,
    ModelfleetBench,
    Prompts,
    Run,
    Unavailable,
    VllmBench,
    become_subreaper,
    key_of_output,
)
from hack import tinymodel
from hack.controlplane.cluster import REPO_ROOT

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "examples" / "bench" / "sharegpt-sample.jsonl"
MODEL = "neutral"
CAPACITY_TTFT_MS = CAPACITY_ITL_MS = 1.0
OUTPUT_TOKENS = 4
RATE_SECONDS = 4.0
MIN_ATTEMPT_REQUESTS = 200
FIRST_RATE = 100.0
MAX_RATE = 25_600.0
SEARCH_PRECISION = 0.2
"""The search ends when the lowest rate not sustained is within 20 % of the highest sustained one
(doubling, then two geometric bisections)."""
LATE_MS = 10.0
RATE_TOLERANCE = 0.01
ACCURACY_TTFT_MS, ACCURACY_ITL_MS = 20.0, 4.0
ACCURACY_OUTPUT_TOKENS = 8
ACCURACY_CONCURRENCY = 8
ACCURACY_REQUESTS = 400
CPU_RATE = 100.0
CPU_REQUESTS = (300, 1500)


def load_average() -> float:
    return os.getloadavg()[0]


def server_count(requests: list[dict[str, Any]], job: Job) -> dict[str, Any]:
    """What the server saw of an open-loop run: arrivals, completions, rate, lateness."""
    arrivals = np.sort(np.array([r["arrived"] for r in requests]))[-job.requests :]  # any warm-up first
    completed = sum(len(r["sent"]) == job.output_tokens for r in requests[-job.requests :])
    count = int(arrivals.size)
    rate = (count - 1) / (arrivals[-1] - arrivals[0]) if count > 1 and arrivals[-1] > arrivals[0] else 0.0
    late = 0
    if count and job.rate:
        ideal = np.arange(count) / job.rate
        lag = arrivals - ideal - np.median(arrivals - ideal)
        late = int((lag * 1000.0 > LATE_MS).sum())
    assert job.rate is not None
    sustained = (
        count == job.requests
        and completed == job.requests
        and abs(rate - job.rate) <= RATE_TOLERANCE * job.rate
        and late <= RATE_TOLERANCE * job.requests
    )
    return {
        "arrived": count,
        "completed": completed,
        "rate": float(rate),
        "late": late,
        "sustained": bool(sustained),
    }


def load_phase_cpu(run: Run, requests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The client's CPU from the server's first arrival to its last chunk sent (`cputrace`), and the
    requests the server saw (warm-up ones too) in that time."""
    sent = [r["sent"][-1] for r in requests if r["sent"]]
    if not sent:
        return None
    cpu = cpu_between(run.cpu_trace, min(r["arrived"] for r in requests), max(sent))
    return None if cpu is None else {"cpu_seconds": cpu, "requests": len(requests)}


class Comparison:
    def __init__(self, workdir: Path, clients: list[Client], first_rate: float, cpu_rate: float) -> None:
        self.workdir, self.clients, self.first_rate, self.cpu_rate = workdir, clients, first_rate, cpu_rate
        self.attempts: list[dict[str, Any]] = []

    def attempt(
        self, client: Client, server: neutral_server.Running, job: Job
    ) -> tuple[dict[str, Any], Run | None]:
        neutral_server.reset(server.url)
        directory = (
            self.workdir
            / client.name.replace(" ", "-")
            / f"{job.rate or 0:g}-{job.concurrency or 0}-{job.requests}"
        )
        directory.mkdir(parents=True, exist_ok=True)
        load_before, server_cpu = load_average(), server.cpu_seconds()
        run: Run | None = None
        error = None
        try:
            run = client.run(job, directory)
        except (RuntimeError, OSError, ValueError, KeyError) as failure:
            error = str(failure)[-500:]
        requests = neutral_server.stats(server.url)
        row: dict[str, Any] = {
            "client": client.name,
            "rate": job.rate,
            "concurrency": job.concurrency,
            "requests": job.requests,
            "load_average": [load_before, load_average()],
            "server_cpu_seconds": server.cpu_seconds() - server_cpu,
            "error": error,
        }
        if run is not None:
            row |= {
                "client_cpu_seconds": run.cpu_seconds,
                "client_cpu_in_load": load_phase_cpu(run, requests),
                "wall_seconds": run.wall_seconds,
                "claims": run.claims,
            }
        if job.rate is not None:
            row["server"] = server_count(requests, job) if requests else {"arrived": 0, "sustained": False}
        self.attempts.append(row)
        return row, run

    def sustained(self, client: Client, server: neutral_server.Running, rate: float) -> bool:
        """One attempt at `rate`: whether the server counted it sustained."""
        requests = max(MIN_ATTEMPT_REQUESTS, int(rate * RATE_SECONDS))
        row, _ = self.attempt(client, server, Job(server.url, MODEL, requests, rate=rate))
        count = row["server"]
        claims = row.get("claims") or {}
        print(
            f"  {client.name:18s} {rate:8.0f}/s  server counted {count.get('rate', 0):9.1f}/s "
            f"arrived {count.get('arrived', 0):6d}/{requests} late {count.get('late', '-'):>4} "
            f"{'SUSTAINED' if count['sustained'] else 'not sustained'}"
            + (
                f"  client claims {claims['achieved_request_rate']:.1f}/s held={claims['held_load']}"
                if "held_load" in claims
                else ""
            )
            + (f"  ERROR {row['error'][:200]}" if row["error"] else "")
            + f"  load {row['load_average'][0]:.1f}",
            flush=True,
        )
        return bool(count["sustained"])

    def capacities(self, server: neutral_server.Running) -> dict[str, float]:
        """Every client's highest sustained rate, searched in rounds (each client one attempt per
        round, so that all of them meet the machine's load alike): doubling, then geometric bisection
        to SEARCH_PRECISION, the same search a BenchmarkSweep runs (`modelfleet_api.loadsearch`)."""
        search = LoadSearch(min=self.first_rate, max=MAX_RATE, precision=SEARCH_PRECISION, max_points=64)
        probes: dict[str, list[loadsearch.Probe]] = {c.name: [] for c in self.clients}
        active = list(self.clients)
        while active:
            for client in list(active):
                step = loadsearch.next_step(search, False, probes[client.name])
                if step.next_level is None:
                    active.remove(client)
                    continue
                held = self.sustained(client, server, step.next_level)
                probes[client.name].append(
                    loadsearch.Probe(step.next_level, () if held else ("notSustained",))
                )
        found = {name: loadsearch.bracket(p).highest_meeting for name, p in probes.items()}
        return {name: probe.level if probe else 0.0 for name, probe in found.items()}

    def cpu_per_thousand(self, client: Client, server: neutral_server.Running) -> dict[str, Any]:
        """Marginal CPU per 1,000 requests of the client (and of the server) at `cpu_rate`."""
        small, large = (
            self.attempt(client, server, Job(server.url, MODEL, n, rate=self.cpu_rate))[0]
            for n in CPU_REQUESTS
        )
        if small["error"] or large["error"]:
            return {"error": small["error"] or large["error"]}
        per = 1000.0 / (CPU_REQUESTS[1] - CPU_REQUESTS[0])
        in_load = [row["client_cpu_in_load"] for row in (small, large)]
        return {
            "client": (large["client_cpu_seconds"] - small["client_cpu_seconds"]) * per,
            "client_in_load": None
            if None in in_load
            else 1000.0 * sum(x["cpu_seconds"] for x in in_load) / sum(x["requests"] for x in in_load),
            "server": (large["server_cpu_seconds"] - small["server_cpu_seconds"]) * per,
            "sustained": [small["server"]["sustained"], large["server"]["sustained"]],
        }


def timing_errors(pairs: list[tuple[float, float]]) -> dict[str, float]:
    errors = np.abs(np.array([client - truth for client, truth in pairs])) * 1000.0
    return {
        "p50_ms": float(np.percentile(errors, 50)),
        "p99_ms": float(np.percentile(errors, 99)),
        "n": len(pairs),
    }


def match(run_records: list[Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    """TTFT and ITL errors of the client's records paired with the server's."""
    by_n = {r["n"]: r for r in requests}
    by_id = {r["request_id"]: r for r in requests if r["request_id"]}
    ttft, itl, unmatched = [], [], 0
    for record in run_records:
        truth = None
        if record.key is not None:
            truth = by_n.get(record.key[1]) if record.key[0] == "n" else by_id.get(record.key[1])
        if truth is None or not record.ok or not truth["sent"]:
            unmatched += 1
            continue
        sent = truth["sent"]
        if record.ttft is not None:
            ttft.append((record.ttft, sent[0] - truth["arrived"]))
        if record.itl is not None and len(sent) > 1:
            itl.append((record.itl, (sent[-1] - sent[0]) / (len(sent) - 1)))
    return {
        "ttft_error": timing_errors(ttft) if ttft else None,
        "itl_error": timing_errors(itl) if itl else None,
        "unmatched": unmatched,
    }


def our_accuracy_records(prompts_file: Path, job: Job, workdir: Path) -> list[Any]:
    """modelfleet-bench in-process (its records keep the response text that names the server record)."""
    config = BenchmarkRuntimeConfig.model_validate(
        yaml.safe_load(yaml.safe_dump(ModelfleetBench(prompts_file, workers=1).config(job, workdir / "ours")))
    )
    records = []
    for record in measure(config).records:
        chunks = record.chunk_times
        itl = (chunks[-1] - chunks[0]) / (len(chunks) - 1) if len(chunks) > 1 else None
        ttft = chunks[0] - record.start if chunks else None
        records.append(ClientRecord(key_of_output(record.text), ttft, itl, record.ok))
    return records


def accuracy(client: Client, prompts_file: Path, workdir: Path) -> dict[str, Any]:
    with neutral_server.running(ACCURACY_TTFT_MS, ACCURACY_ITL_MS, MODEL) as server:
        job = Job(
            server.url,
            MODEL,
            ACCURACY_REQUESTS,
            concurrency=ACCURACY_CONCURRENCY,
            output_tokens=ACCURACY_OUTPUT_TOKENS,
        )
        directory = workdir / "accuracy" / client.name.replace(" ", "-")
        directory.mkdir(parents=True, exist_ok=True)
        load_before = load_average()
        if isinstance(client, ModelfleetBench):
            records = our_accuracy_records(prompts_file, job, directory)
        else:
            records = client.run(job, directory).records
        found = match(records, neutral_server.stats(server.url))
        found["load_average"] = [load_before, load_average()]
        return found


def prepare(workdir: Path, only: set[str] | None) -> tuple[list[Client], dict[str, str], Path]:
    """The clients that can run here (of `only`, when given: the others are not installed), the
    reason for each that cannot, and the prompts file of ours."""
    texts = [json.loads(line)["conversations"][0]["value"] for line in SAMPLE.read_text().splitlines()]
    tokenizer = workdir / "tokenizer"
    tinymodel.train_tokenizer(tokenizer)
    prompts = Prompts(texts, tokenizer)
    ours_file = prompts.lines(
        workdir / "prompts.jsonl", len(texts), lambda text: json.dumps({"prompt": text})
    )
    candidates: list[Client] = [
        ModelfleetBench(ours_file),
        GuideLLM(prompts),
        AIPerf(prompts),
        VllmBench(prompts),
    ]
    ready, skipped = [], {}
    for client in candidates:
        if only is not None and client.name not in only:
            continue
        try:
            client.prepare(workdir)
            ready.append(client)
        except Unavailable as reason:
            skipped[client.name] = str(reason)
            print(f"SKIPPED {client.name}: {reason}", flush=True)
    return ready, skipped, ours_file


def ratio(ours: float | None, best: float | None) -> float | None:
    return None if not ours or not best else ours / best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--json", type=Path, default=REPO_ROOT / ".cluster" / "bench-client-capacity.json",
        help="where the JSON report is written (default: under .cluster/, which git ignores)",
    )  # fmt: skip
    parser.add_argument("--only", help="comma-separated client names to run (default: all)")
    parser.add_argument("--first-rate", type=float, default=FIRST_RATE, help="first rate of the search")
    parser.add_argument(
        "--cpu-rate", type=float, default=CPU_RATE, help="the rate of the CPU measurement (requests/s)"
    )
    parser.add_argument(
        "--parts", default="accuracy,cpu,capacity", help="which measurements to make (default: all three)"
    )
    args = parser.parse_args()
    become_subreaper()
    load_before = os.getloadavg()
    print(f"load average before: {load_before}; {os.cpu_count()} CPUs", flush=True)
    results: dict[str, Any] = {
        "load_average": {"before": load_before},
        "cpus": os.cpu_count(),
        "cpu_rate": args.cpu_rate,
    }
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        workdir = Path(tmp)
        clients, skipped, ours_file = prepare(workdir, set(args.only.split(",")) if args.only else None)
        comparison = Comparison(workdir, clients, args.first_rate, args.cpu_rate)
        figures: dict[str, dict[str, Any]] = {c.name: {"version": c.version} for c in clients}
        parts = set(args.parts.split(","))
        for client in clients if "accuracy" in parts else []:
            print(
                f"\n== {client.name} {client.version}: timing error at {ACCURACY_CONCURRENCY} concurrent",
                flush=True,
            )
            figures[client.name]["accuracy"] = accuracy(client, ours_file, workdir)
            print(f"   {figures[client.name]['accuracy']}", flush=True)
        # capacity and CPU count arrivals only: the server's cheapest mode (chunks batched per 1 ms
        # tick, no kernel transmit stamps) leaves the most CPU to the clients
        with neutral_server.running(
            CAPACITY_TTFT_MS, CAPACITY_ITL_MS, MODEL, tick_ms=1.0, stamp_sends=False
        ) as server:
            for client in clients if "cpu" in parts else []:
                print(f"\n== {client.name}: CPU per 1,000 requests at {args.cpu_rate:g}/s", flush=True)
                figures[client.name]["cpu_per_1000"] = comparison.cpu_per_thousand(client, server)
                print(f"   {figures[client.name]['cpu_per_1000']}", flush=True)
            if "capacity" in parts:
                print("\n== highest sustained rate (the clients take turns, one attempt each)", flush=True)
                for name, rate in comparison.capacities(server).items():
                    figures[name]["sustained_rate"] = rate
    results |= {"clients": figures, "skipped": skipped, "attempts": comparison.attempts}
    results["load_average"]["after"] = os.getloadavg()
    results["targets"] = targets(figures, comparison.attempts)
    report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


def targets(figures: dict[str, dict[str, Any]], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    ours = figures.get(ModelfleetBench.name)
    if ours is None:
        return {}
    peers = {name: f for name, f in figures.items() if name != ModelfleetBench.name}
    rated = {name: f["sustained_rate"] for name, f in peers.items() if "sustained_rate" in f}
    best_name = max(rated, key=rated.__getitem__, default=None)
    best_peer = rated[best_name] if best_name is not None else None
    held = [
        a
        for a in attempts
        if a["client"] == ModelfleetBench.name
        and a.get("rate")
        and (a.get("claims") or {}).get("held_load")
        and (a.get("claims") or {}).get("achieved_request_rate")
    ]
    deviations = [
        abs(a["server"]["rate"] - a["claims"]["achieved_request_rate"]) / a["claims"]["achieved_request_rate"]
        for a in held
    ]
    accuracy = (ours.get("accuracy") or {}).get("ttft_error") or {}
    return {
        "server_rate_within_1pct_where_held": {
            "max_deviation": max(deviations, default=None),
            "points": len(held),
            "met": bool(held) and max(deviations) <= 0.01,
        },
        "sustained_ratio_to_best_peer": {
            "ratio": ratio(ours.get("sustained_rate"), best_peer),
            "best_peer": best_name,
            "best_peer_rate": best_peer,
            "met": None if not best_peer else ours.get("sustained_rate", 0.0) >= 1.5 * best_peer,
        },
        "ttft_error_at_8": {
            **accuracy,
            "met": bool(accuracy) and accuracy["p50_ms"] <= 0.05 and accuracy["p99_ms"] <= 5.0,
        },
    }


def report(results: dict[str, Any]) -> None:
    print()
    print(
        f"{'client':20s} {'version':>8s} {'sustained/s':>11s} {'TTFT err p50':>12s} {'p99':>8s} "
        f"{'ITL err p50':>11s} {'p99':>8s} {'CPU s/1000 req':>14s} {'in load':>8s}"
    )
    for name, f in results["clients"].items():
        ttft = (f.get("accuracy") or {}).get("ttft_error") or {}
        itl = (f.get("accuracy") or {}).get("itl_error") or {}
        cpu, in_load = ((f.get("cpu_per_1000") or {}).get(key) for key in ("client", "client_in_load"))
        cpu, in_load = (math.nan if x is None else x for x in (cpu, in_load))
        ttft_p50, ttft_p99 = ttft.get("p50_ms", math.nan), ttft.get("p99_ms", math.nan)
        itl_p50, itl_p99 = itl.get("p50_ms", math.nan), itl.get("p99_ms", math.nan)
        print(
            f"{name:20s} {f['version']:>8s} {f.get('sustained_rate', math.nan):11.0f} {ttft_p50:9.3f} ms "
            f"{ttft_p99:6.2f} ms {itl_p50:8.3f} ms {itl_p99:6.2f} ms {cpu:14.2f} {in_load:8.2f}"
        )
    for name, reason in results["skipped"].items():
        print(f"{name:20s} skipped: {reason}")
    print(json.dumps(results["targets"], indent=2))
    print(
        f"load average: before {results['load_average']['before']}, after {results['load_average']['after']}"
    )


if __name__ == "__main__":
    main()
