"""One load point measured: the workload built, the load run by the worker processes, the engine's
counters read around it, the metrics summarized. No files are written here (`results` does that)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelfleet_api.benchmark import OPENAI_PROTOCOLS, BenchmarkRuntimeConfig, Protocol

from modelfleet_serve.bench import workload
from modelfleet_serve.bench.engine_metrics import read_engine_counters
from modelfleet_serve.bench.metrics import count_missing_tokens, summarize
from modelfleet_serve.bench.progress import LoadProgress
from modelfleet_serve.bench.records import RequestRecord
from modelfleet_serve.bench.runner import Target, choose_workers, run_load_point
from modelfleet_serve.bench.schedule import SessionPlan
from modelfleet_serve.bench.workload import load_tokenizer

log = logging.getLogger(__name__)

DURATION_ONLY_PROMPTS = 4096
"""Requests prepared (in sessions) when a load point is bounded by its duration only: they are cycled."""


def api_key(config: BenchmarkRuntimeConfig) -> str | None:
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise ValueError(f"apiKeyEnv: environment variable {config.api_key_env} is not set or empty")
    return key


@dataclass(frozen=True)
class Measurement:
    """One measured load point: its results document, every record and the sessions they sent."""

    document: dict[str, Any]
    records: list[RequestRecord]
    sessions: SessionPlan


def engine_metrics_url(config: BenchmarkRuntimeConfig) -> str | None:
    """Where the engine's Prometheus counters are: `engineMetricsUrl`, else `/metrics` beside the
    OpenAI API (KServe: Triton serves them on another port, so only when set). Behind a proxy that
    routes by ``targetHost`` the URL's own ``/metrics`` are the proxy's: only when set, too."""
    if config.engine_metrics_url is not None:
        return config.engine_metrics_url
    if config.target_host is not None:
        log.info("targetHost is set and engineMetricsUrl is not: the prefix-cache hit rate is not measured")
        return None
    if config.protocol in OPENAI_PROTOCOLS:
        return f"{config.target_url.rstrip('/')}/metrics"
    return None


def measure(config: BenchmarkRuntimeConfig) -> Measurement:
    """Run the load point (no files written)."""
    tokenizer = load_tokenizer(config.tokenizer)
    load = config.load
    count = load.requests or DURATION_ONLY_PROMPTS
    requests = workload.build(config.workload, load.warmup_requests, count, tokenizer)
    sessions = SessionPlan(requests.measured)
    conversation = any(turn.history for s in requests.measured for turn in s.turns)
    if conversation and config.protocol is not Protocol.OPENAI_CHAT:
        raise ValueError(
            f"workload.trace: it holds conversations (chat messages); replay it with protocol openai-chat, "
            f"not {config.protocol}"
        )
    target = Target(
        config.target_url,
        config.model,
        config.protocol,
        config.kserve,
        api_key(config),
        config.workload.ignore_eos,
        config.target_host,
    )
    requested = config.workers if "workers" in config.model_fields_set else None
    turns = [t for s in requests.measured for t in s.turns]
    workers = choose_workers(load, requested, sum(t.max_tokens for t in turns) / len(turns))
    metrics_url = engine_metrics_url(config)
    started = datetime.now(UTC)
    total = load.warmup_requests + load.requests if load.requests else None
    with LoadProgress(f"{config.target_name} {load.label}", total) as progress:
        point = asyncio.run(
            run_load_point(
                target,
                load,
                requests.warmup,
                sessions,
                workers,
                config.workload.seed,
                progress.update,
                metrics_url,
            )
        )
    counters = (point.counters_before, read_engine_counters(metrics_url))
    count_missing_tokens(point.records, tokenizer)
    summary = summarize(point.records, config.slos, load, counters)
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
    return Measurement(document, point.records, sessions)


def run_benchmark(config: BenchmarkRuntimeConfig) -> tuple[dict[str, Any], list[RequestRecord]]:
    """Run the load point; the results document and every record (no files written)."""
    measured = measure(config)
    return measured.document, measured.records
