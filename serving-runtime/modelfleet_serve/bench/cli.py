"""`modelfleet-bench run` (one load point from a BenchmarkRuntimeConfig, then its quality step),
`modelfleet-bench sweep` (a pattern of points, or a search, against one target from here),
`modelfleet-bench quality` (the quality step alone) and `modelfleet-bench plot`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from modelfleet_api.benchmark import BenchmarkRuntimeConfig, LoadPoint, Protocol
from modelfleet_api.contract import ENV_BENCH_CONFIG
from modelfleet_api.quality import floor_misses
from pydantic import ValidationError

from modelfleet_serve.bench import exports
from modelfleet_serve.bench.plot import plot_sweep
from modelfleet_serve.bench.point import measure, run_benchmark
from modelfleet_serve.bench.quality import score_quality
from modelfleet_serve.bench.results import (
    TERMINATION_LOG,
    point_metrics,
    write_results,
    write_termination_message,
)
from modelfleet_serve.bench.sweep import LocalSweep, run_sweep

__all__ = ["main", "run", "run_benchmark"]
log = logging.getLogger("modelfleet_bench")


def run(config: BenchmarkRuntimeConfig, termination_log: Path = TERMINATION_LOG) -> int:
    """Measure the point, score its quality (with `quality`, after the load phase), write its files and
    figures, then try its sinks. A failed sink is reported (log, termination message), never fatal: the
    point is measured and its files are on disk."""
    measured = measure(config)
    document, quality, floors = measured.document, None, {}
    if config.quality is not None:
        floors = config.quality.floors
        scored = score_quality(config, config.quality)
        quality = scored.point_quality(floors)
        document = {**document, "quality": scored.document(floors)}
    output = Path(config.output_dir)
    chat = config.protocol is Protocol.OPENAI_CHAT
    files = write_results(output, document, measured.records, measured.sessions, chat)
    summary = measured.document["summary"]
    # the figures first: should a sink hang until the pod is killed, the operator still has them
    write_termination_message(point_metrics(summary, quality=quality), termination_log, floors)
    log.info(
        "%s %s: %.2f req/s, %.1f output tok/s, TTFT p50 %.1f ms, TPOT p50 %.2f ms, errors %.1f%% -> %s",
        config.target_name,
        config.load.label,
        summary["requests_per_s"],
        summary["output_tokens_per_s"],
        _or_nan(summary["ttft_ms"]["p50"]),
        _or_nan(summary["tpot_ms"]["p50"]),
        100 * summary["error_rate"],
        files[0],
    )
    if not summary["held_load"]:
        log.warning("%s", not_held_message(config.load, summary))
    if quality is not None and quality.meets_floor is False:
        log.warning("quality floor missed: %s", "; ".join(floor_misses(quality, floors)))
    report = exports.export(config, summary, files)
    metrics = point_metrics(summary, report.results_uri, report.errors, quality)
    write_termination_message(metrics, termination_log, floors)
    if report.errors:
        log.warning(
            "the point is measured; %d sink(s) failed: %s", len(report.errors), "; ".join(report.errors)
        )
    return 0


def quality_only(config: BenchmarkRuntimeConfig) -> int:
    """Score the target's quality without sending the load; prints the scores, and exits 1 when a floor
    is missed (for a pipeline to stop on)."""
    if config.quality is None:
        raise ValueError("quality: the config has no quality section to score")
    document = score_quality(config, config.quality).document(config.quality.floors)
    print(json.dumps(document, indent=2))
    return 1 if document["floor_misses"] else 0


def not_held_message(load: LoadPoint, summary: dict[str, Any]) -> str:
    """Why the point's figures describe a lighter load than asked for, and what to do about it."""
    lag = summary["schedule_lag_ms"]
    parts = [
        f"{load.label}: the client did NOT hold this load: {summary['late_requests']} of "
        f"{summary['requests']} requests were sent more than {summary['late_threshold_ms']:g} ms late "
        f"(schedule lag p50 {_or_nan(lag['p50']):.2f} ms, p99 {_or_nan(lag['p99']):.2f} ms)"
    ]
    planned, sent = summary.get("planned_arrival_rate"), summary.get("achieved_arrival_rate")
    if planned and sent:
        parts.append(f"arrivals sent at {sent:.1f}/s of {planned:.1f}/s planned")
    if summary["queued_requests"]:
        parts.append(
            f"{summary['queued_requests']} waited for a free slot (maxInFlight {load.max_in_flight} reached)"
        )
    return "; ".join(parts) + (
        ". Give the benchmark more CPU (workers, a larger CPU request) or raise maxInFlight; "
        "its figures describe a lighter load than asked for."
    )


def _or_nan(value: float | None) -> float:
    """A percentile for a log line: NaN when no request had one (all failed, or one token each)."""
    return float("nan") if value is None else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelfleet-bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run one load point")
    run_parser.add_argument(
        "--config", default=os.environ.get(ENV_BENCH_CONFIG), help=f"(${ENV_BENCH_CONFIG})"
    )
    run_parser.add_argument(
        "--termination-log",
        type=Path,
        help=f"where to write the point's figures (default: {TERMINATION_LOG} when it exists)",
    )
    sweep_parser = commands.add_parser(
        "sweep", help="run a pattern of load points (or a search) against one target from here"
    )
    sweep_parser.add_argument("--config", required=True, type=Path, help="a point's config, load a pattern")
    quality_parser = commands.add_parser(
        "quality", help="score the target's quality alone (a point's config with quality; no load is sent)"
    )
    quality_parser.add_argument("--config", required=True, type=Path)
    plot_parser = commands.add_parser("plot", help="plot latency against throughput from results.json files")
    plot_parser.add_argument("results", nargs="+", type=Path)
    plot_parser.add_argument("--output", "-o", type=Path, default=Path("sweep.html"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "plot":
            print(plot_sweep(args.results, args.output))
            return 0
        if args.command == "sweep":
            result = run_sweep(LocalSweep.from_file(args.config))
            if result.frontier is not None:
                print(json.dumps(result.frontier, indent=2))
            if result.quality is not None:
                print(json.dumps(result.quality, indent=2))
            print(result.plot)
            return 0
        if args.command == "quality":
            return quality_only(BenchmarkRuntimeConfig.from_file(args.config))
        if not args.config:
            parser.error(f"no config: pass --config or set {ENV_BENCH_CONFIG}")
        config = BenchmarkRuntimeConfig.from_file(args.config)
        if args.termination_log is not None:
            args.termination_log.touch()
            return run(config, args.termination_log)
        return run(config)
    except (OSError, ValidationError, ValueError) as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
