"""How the operator scales: bursts against a plain client, a steady stream, and its cost at rest.

Each measurement runs on a control plane of its own (etcd, kube-apiserver, controller-manager, scheduler,
kwok), started fresh under ``--run-dir/NAMESPACE`` on ``--port-base`` and stopped after it, with the
operator as a real process (``python -m modelfleet_operator``, its default settings) running as a
ServiceAccount of its own. ``--plane shared`` (the default of ``--quick``) runs every measurement on one
plane under ``--run-dir/shared`` instead, each in its own namespace with its own operator or plain
client process, the namespace deleted after it: exact counts in a fraction of the time, for proving the
benchmark works, but figures that share the plane's history (``benchmarks/scale/phases.py``).

- burst: N TrainingJobs of ``--workers`` workers created as fast as a client can (16 threads); time
  until every one has all its children (ServiceAccount, Role, RoleBinding, two ConfigMaps, Service,
  worker Job: the operator's own builders decide the set), creation -> worker-Job latency p50/p95/p99.
  First a plain Python client (``benchmarks/scale/plain_client.py``: watch, then one POST per child,
  nothing else) does the same for the same TrainingJobs: what the API server allows on this machine;
  the operator's figures are given as ratios of its. Latencies of both are counted from each
  TrainingJob's creation, so they include the wait behind the burst's earlier TrainingJobs.
- steady: TrainingJobs at a fixed rate (20/s for 60 s), creation -> worker-Job p50/p99.
- steady-plain (not run by default): the same stream handled by the plain client instead of the
  operator: whether the API server allows that rate on this machine at all.
- idle: 500 Running TrainingJobs and 100 Ready ModelDeployments (kwok runs their pods), nothing
  changing: the operator's API requests per second, counted exactly from the API server's audit log
  (the operator's user only), and its CPU; ``apiserver_request_total`` over the same window with and
  without the operator is reported beside it (the other clients' requests are in both).
- client-check (not run by default): the plain client's burst with 1 and 2 processes; when two do not
  go faster, one process is not the limit.

Each phase reports the operator's peak RSS (VmHWM) and CPU seconds from /proc, the control plane's own
CPU seconds, API Priority and Fairness rejections and queue waits, and the machine's load average: the
machine is shared, so read ratios, not seconds. The figures go to ``--out`` as JSON, and a table with
issue 18's targets is printed.

    python -m benchmarks.operator_scale --out report.json              # everything (30-60 min on 2 cores)
    python -m benchmarks.operator_scale --quick --out report.json      # small sizes, one plane
    python -m benchmarks.operator_scale --phases burst --burst-sizes 300 --out report.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.scale import procstat
from benchmarks.scale.phases import Bench, Settings
from benchmarks.scale.report import print_report, targets
from hack.controlplane.cluster import PORT_BASE, REPO_ROOT

PHASES = ("burst", "steady", "steady-plain", "idle", "client-check")
DEFAULT_PHASES = ("burst", "steady", "idle")
PLANES = ("fresh", "shared")
BENCH_PORT_OFFSET = 100
"""Ports: `make cluster-up` uses the base, the test tier +200 (and +300 for a second plane), this +100."""
QUICK = {
    "burst_sizes": [5],
    "steady_rate": 2.0,
    "steady_seconds": 4.0,
    "idle_training_jobs": 5,
    "idle_deployments": 2,
    "idle_settle": 2.0,
    "idle_seconds": 4.0,
    "client_check_size": 5,
    "timeout": 120.0,
}


def _csv(kind: type) -> Any:
    return lambda text: [kind(part) for part in text.split(",") if part]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="operator_scale", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1],
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="where the JSON report is written")
    parser.add_argument(
        "--phases",
        type=_csv(str),
        default=list(DEFAULT_PHASES),
        help=f"comma-separated, of {', '.join(PHASES)} (default: {','.join(DEFAULT_PHASES)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes on one shared plane (--plane), that prove the benchmark works",
    )
    parser.add_argument(
        "--plane",
        choices=PLANES,
        help="a fresh control plane per measurement, or one for all (default: fresh; --quick: shared)",
    )
    parser.add_argument("--burst-sizes", type=_csv(int), default=[100, 300, 1000])
    parser.add_argument("--steady-rate", type=float, default=20.0, help="TrainingJobs per second")
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--idle-training-jobs", type=int, default=500)
    parser.add_argument("--idle-deployments", type=int, default=100)
    parser.add_argument("--idle-settle", type=float, default=30.0,
                        help="seconds between the last object Running/Ready and the idle window")  # fmt: skip
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="length of the idle window")
    parser.add_argument("--client-check-size", type=int, default=1000)
    parser.add_argument("--client-check-processes", type=_csv(int), default=[1, 2])
    parser.add_argument("--workers", type=int, default=4, help="worker pods per TrainingJob")
    parser.add_argument("--creator-threads", type=int, default=16)
    parser.add_argument("--plain-processes", type=int, default=1)
    parser.add_argument("--plain-threads", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for any one outcome")
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an operator setting, e.g. MODELFLEET_RESYNC_SECONDS=60 (repeatable)",
    )
    parser.add_argument("--run-dir", type=Path, default=REPO_ROOT / ".cluster" / "bench")
    parser.add_argument("--port-base", type=int, default=PORT_BASE + BENCH_PORT_OFFSET)
    return parser


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}  # fmt: skip


def arguments(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, str]]:
    """The command line, with ``--quick``'s sizes and plane where not given, and ``--operator-env``."""
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.phases) - set(PHASES))
    if unknown:
        parser.error(f"--phases: unknown {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    if args.plane is None:
        args.plane = "shared" if args.quick else "fresh"
    env = {}
    for item in args.operator_env:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--operator-env {item!r}: expected KEY=VALUE")
        env[key] = value
    return args, env


def main(argv: list[str] | None = None) -> int:
    args, env = arguments(argv)
    settings = Settings(
        workers=args.workers, creator_threads=args.creator_threads, plain_processes=args.plain_processes,
        plain_threads=args.plain_threads, timeout=args.timeout, operator_env=env,
    )  # fmt: skip
    report: dict[str, Any] = {
        "benchmark": "operator_scale",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "plane": args.plane,
        "git": _git(),
        "machine": {"cpus": os.cpu_count(), "loadavg_start": procstat.loadavg()},
        "settings": {**vars(settings), "phases": args.phases},
        "phases": {},
    }
    started = time.monotonic()
    print(f"control planes ({args.plane}) under {args.run_dir}, ports from {args.port_base}", flush=True)
    shutil.rmtree(args.run_dir, ignore_errors=True)  # an earlier run's logs
    bench = Bench(args.run_dir, args.port_base, settings, shared_plane=args.plane == "shared")
    try:
        _run_phases(bench, args, report)
    finally:
        bench.close()
        report["machine"]["loadavg_end"] = procstat.loadavg()
        report["seconds"] = round(time.monotonic() - started, 1)
        report["targets"] = targets(report["phases"])
        _write(args.out, report)
    print_report(report)
    print(f"report: {args.out}")
    return 0


def _run_phases(bench: Bench, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Each phase in turn; the report is written after each, so an interrupted run keeps what it did."""
    phases = report["phases"]
    if "burst" in args.phases:
        phases["burst"] = []
        for size in args.burst_sizes:
            print(f"burst of {size} TrainingJobs: plain client, then operator", flush=True)
            entry: dict[str, Any] = {}
            phases["burst"].append(entry)
            bench.burst(size, entry, lambda: _write(args.out, report))
    if "steady" in args.phases:
        print(f"steady: {args.steady_rate:g} TrainingJobs/s for {args.steady_seconds:g} s", flush=True)
        phases["steady"] = bench.steady(args.steady_rate, args.steady_seconds)
        _write(args.out, report)
    if "steady-plain" in args.phases:
        print(
            f"steady, plain client: {args.steady_rate:g} TrainingJobs/s for {args.steady_seconds:g} s",
            flush=True,
        )
        phases["steady_plain"] = bench.steady(args.steady_rate, args.steady_seconds, who="plain")
        _write(args.out, report)
    if "idle" in args.phases:
        print(
            f"idle: {args.idle_training_jobs} TrainingJobs, {args.idle_deployments} ModelDeployments",
            flush=True,
        )
        phases["idle"] = bench.idle(
            args.idle_training_jobs, args.idle_deployments, args.idle_settle, args.idle_seconds
        )
        _write(args.out, report)
    if "client-check" in args.phases:
        print(
            f"client check: bursts of {args.client_check_size} with {args.client_check_processes} "
            "plain client processes",
            flush=True,
        )
        phases["client_check"] = bench.client_check(args.client_check_size, args.client_check_processes)


def _write(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
