"""`modelfleet-bench run` (one load point from a BenchmarkRuntimeConfig) and `modelfleet-bench plot`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_api.contract import ENV_BENCH_CONFIG
from pydantic import ValidationError

from modelfleet_serve.bench import exports
from modelfleet_serve.bench.metrics import count_missing_tokens, summarize
from modelfleet_serve.bench.plot import plot_sweep
from modelfleet_serve.bench.progress import LoadProgress
from modelfleet_serve.bench.records import RequestRecord
from modelfleet_serve.bench.results import (
    REQUESTS_CSV,
    TERMINATION_LOG,
    point_metrics,
    write_results,
    write_termination_message,
)
from modelfleet_serve.bench.runner import Target, choose_workers, run_load_point
from modelfleet_serve.bench.workload import build_requests, load_tokenizer

log = logging.getLogger("modelfleet_bench")
DURATION_ONLY_PROMPTS = 4096
"""Distinct prompts prepared when a load point is bounded by duration only (they are cycled)."""


def api_key(config: BenchmarkRuntimeConfig) -> str | None:
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise ValueError(f"apiKeyEnv: environment variable {config.api_key_env} is not set or empty")
    return key


def run_benchmark(config: BenchmarkRuntimeConfig) -> tuple[dict[str, Any], list[RequestRecord]]:
    """Run the load point; the results document and every record."""
    tokenizer = load_tokenizer(config.tokenizer)
    load = config.load
    count = load.requests or DURATION_ONLY_PROMPTS
    requests = build_requests(config.workload, load.warmup_requests + count, tokenizer)
    warmup, measured = requests[: load.warmup_requests], requests[load.warmup_requests :]
    target = Target(
        config.target_url,
        config.model,
        config.protocol,
        config.kserve,
        api_key(config),
        config.workload.ignore_eos,
    )
    requested = config.workers if "workers" in config.model_fields_set else None
    workers = choose_workers(load, requested, sum(r.max_tokens for r in measured) / len(measured))
    started = datetime.now(UTC)
    total = load.warmup_requests + load.requests if load.requests else None
    with LoadProgress(f"{config.target_name} {load.label}", total) as progress:
        records = asyncio.run(
            run_load_point(target, load, warmup, measured, workers, config.workload.seed, progress.update)
        )
    count_missing_tokens(records, tokenizer)
    summary = summarize(records, config.slos)
    document = {
        "target": config.target_name,
        "model": config.model,
        "protocol": str(config.protocol),
        "load": load.to_wire(),
        "load_label": load.label,
        "workload": config.workload.to_wire(),
        "slos": config.slos.to_wire(),
        "workers": workers,
        "started_at": started.isoformat(),
        "summary": summary,
    }
    return document, records


def run(config: BenchmarkRuntimeConfig, termination_log: Path = TERMINATION_LOG) -> int:
    """Measure the point, write its files and figures, then try its sinks. A failed sink is reported
    (log, termination message), never fatal: the point is measured and its files are on disk."""
    document, records = run_benchmark(config)
    output = Path(config.output_dir)
    results = write_results(output, document, records)
    summary = document["summary"]
    # the figures first: should a sink hang until the pod is killed, the operator still has them
    write_termination_message(point_metrics(summary), termination_log)
    log.info(
        "%s %s: %.2f req/s, %.1f output tok/s, TTFT p50 %.1f ms, TPOT p50 %.2f ms, errors %.1f%% -> %s",
        config.target_name,
        config.load.label,
        summary["requests_per_s"],
        summary["output_tokens_per_s"],
        _or_nan(summary["ttft_ms"]["p50"]),
        _or_nan(summary["tpot_ms"]["p50"]),
        100 * summary["error_rate"],
        results,
    )
    report = exports.export(config, summary, [results, output / REQUESTS_CSV])
    write_termination_message(point_metrics(summary, report.results_uri, report.errors), termination_log)
    if report.errors:
        log.warning(
            "the point is measured; %d sink(s) failed: %s", len(report.errors), "; ".join(report.errors)
        )
    return 0


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
    plot_parser = commands.add_parser("plot", help="plot latency against throughput from results.json files")
    plot_parser.add_argument("results", nargs="+", type=Path)
    plot_parser.add_argument("--output", "-o", type=Path, default=Path("sweep.png"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "plot":
        print(plot_sweep(args.results, args.output))
        return 0
    if not args.config:
        parser.error(f"no config: pass --config or set {ENV_BENCH_CONFIG}")
    try:
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
