"""The benchmark's metrics, computed from request records after the run. Definitions: README."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from modelfleet_api.benchmark import LoadMode, LoadPoint, Slos

from modelfleet_serve.bench.engine_metrics import EngineCounters, hit_rate
from modelfleet_serve.bench.records import RequestRecord
from modelfleet_serve.bench.workload import Tokenizer

PERCENTILES = (50, 90, 95, 99)


def count_missing_tokens(records: Sequence[RequestRecord], tokenizer: Tokenizer | None) -> None:
    """Fill `output_tokens` where the server reported no usage: the tokenizer's count of the
    generated text, else one token per streamed chunk."""
    for record in records:
        if record.ok and record.output_tokens is None:
            if tokenizer is not None:
                record.output_tokens = len(tokenizer.encode(record.text, add_special_tokens=False))
                record.token_source = "tokenizer"
            else:
                record.output_tokens = len(record.chunk_times)
                record.token_source = "chunks"


@dataclass(frozen=True)
class PerRequest:
    """Per-request latencies in seconds (NaN where undefined)."""

    ttft: np.ndarray
    e2e: np.ndarray
    tpot: np.ndarray
    output_tokens: np.ndarray
    itl: np.ndarray
    """Every gap between consecutive chunks of every request, pooled."""


def per_request(ok: Sequence[RequestRecord]) -> PerRequest:
    ttft = np.array([r.chunk_times[0] - r.start for r in ok])
    e2e = np.array([r.end - r.start for r in ok])
    tokens = np.array([r.output_tokens or 0 for r in ok], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(tokens > 1, (e2e - ttft) / (tokens - 1), np.nan)
    gaps = [np.diff(r.chunk_times) for r in ok if len(r.chunk_times) > 1]
    itl = np.concatenate(gaps) if gaps else np.array([])
    return PerRequest(ttft=ttft, e2e=e2e, tpot=tpot, output_tokens=tokens, itl=itl)


def distribution_ms(seconds: np.ndarray) -> dict[str, float | None]:
    """Mean and percentiles (numpy's linear interpolation) in milliseconds; None when empty."""
    values = seconds[~np.isnan(seconds)] * 1000.0
    if values.size == 0:
        return {"mean": None, **{f"p{p}": None for p in PERCENTILES}}
    return {"mean": float(values.mean()), **{f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}}


def good(requests: PerRequest, slos: Slos) -> np.ndarray:
    """Which requests meet every SLO threshold that is set."""
    meets = np.ones(requests.ttft.size, dtype=bool)
    for values, limit_ms in (
        (requests.ttft, slos.ttft_p95_ms),
        (requests.tpot, slos.tpot_p95_ms),
        (requests.e2e, slos.e2e_p95_ms),
    ):
        if limit_ms is not None:
            # a one-token request has no TPOT and cannot miss a TPOT objective
            meets &= np.nan_to_num(values * 1000.0, nan=0.0) <= limit_ms
    return meets


HELD_LATE_FRACTION = 0.01
"""A point holds its load when at most this share of its requests were sent late ..."""
HELD_RATE_TOLERANCE = 0.01
"""... and (open loop) its arrivals were sent at the planned rate within this fraction."""


def _rate(times: np.ndarray) -> float | None:
    """(n - 1) / (last - first) of sorted times; None with fewer than two distinct times."""
    if times.size < 2 or times[-1] <= times[0]:
        return None
    return float((times.size - 1) / (times[-1] - times[0]))


def schedule_figures(measured: Sequence[RequestRecord], load: LoadPoint) -> dict[str, Any]:
    """Whether the client kept the load's schedule: how late requests were sent (start minus planned
    time), how many were late, how many waited for a free slot (`maxInFlight`), and for an open loop
    the rate at which the arrivals (first turns) were sent against the planned one."""
    lag = np.array([r.start - r.scheduled for r in measured])
    late = int((lag * 1000.0 > load.late_threshold_ms).sum())
    figures: dict[str, Any] = {
        "schedule_lag_ms": distribution_ms(lag),
        "late_requests": late,
        "late_threshold_ms": load.late_threshold_ms,
        "queued_requests": sum(r.queued for r in measured),
    }
    held = late <= HELD_LATE_FRACTION * len(measured)
    if load.mode is LoadMode.OPEN_LOOP:
        arrivals = [r for r in measured if r.turn == 0]
        planned_times = np.array([r.scheduled for r in arrivals])
        planned = _rate(np.sort(planned_times))
        if planned is not None:
            # the planned rate over the slope of send times against planned times (least squares):
            # a steady drift shows, a single late request barely moves it
            slope = float(np.polyfit(planned_times, np.array([r.start for r in arrivals]), 1)[0])
            sent = planned / slope
            figures["planned_arrival_rate"], figures["achieved_arrival_rate"] = planned, sent
            held = held and abs(sent - planned) <= HELD_RATE_TOLERANCE * planned
    figures["held_load"] = bool(held)
    return figures


def prefix_cache_figures(
    ok: Sequence[RequestRecord], counters: tuple[EngineCounters | None, EngineCounters | None]
) -> dict[str, Any]:
    """The engine's prefix-cache hit rate over the point: from the responses' `cached_tokens` when
    the engine reports them (this client's requests only), else from its counters (`engine_metrics`)."""
    reported = [r for r in ok if r.cached_tokens is not None and r.prompt_tokens]
    if reported:
        cached = sum(r.cached_tokens or 0 for r in reported)
        prompt = sum(r.prompt_tokens or 0 for r in reported)
        return {"hit_rate": cached / prompt, "source": "usage.prompt_tokens_details.cached_tokens"}
    rate, source = hit_rate(*counters)
    return {"hit_rate": rate, "source": source}


def ttft_by_turn(ok: Sequence[RequestRecord]) -> dict[str, dict[str, float | None]]:
    """Conversations: TTFT of each turn number (later turns reuse the conversation's cached prefix);
    empty without multi-turn."""
    turns = sorted({r.turn for r in ok})
    if turns in ([], [0]):
        return {}
    return {
        str(turn): distribution_ms(np.array([r.chunk_times[0] - r.start for r in ok if r.turn == turn]))
        for turn in turns
    }


def summarize(
    records: Sequence[RequestRecord],
    slos: Slos,
    load: LoadPoint,
    counters: tuple[EngineCounters | None, EngineCounters | None] = (None, None),
) -> dict[str, Any]:
    """Summary metrics of the measured (non-warm-up) requests."""
    measured = [r for r in records if not r.warmup]
    if not measured:
        raise ValueError("no measured requests completed (duration too short or every request was warm-up)")
    ok = [r for r in measured if r.ok]
    first_start = min(r.start for r in measured)
    duration = max(r.end for r in measured) - first_start
    requests = per_request(ok)
    achieved_rate = _rate(np.sort(np.array([r.start for r in measured])))
    good_mask = good(requests, slos)
    # An SLO with no completed request to measure is not met (every request may have failed).
    slo_checks = {
        name: (p95 := distribution_ms(values)["p95"]) is not None and p95 <= limit
        for name, values, limit in (
            ("ttft", requests.ttft, slos.ttft_p95_ms),
            ("tpot", requests.tpot, slos.tpot_p95_ms),
            ("e2e", requests.e2e, slos.e2e_p95_ms),
        )
        if limit is not None
    }
    return {
        "requests": len(measured),
        "completed": len(ok),
        "errors": len(measured) - len(ok),
        "error_rate": (len(measured) - len(ok)) / len(measured),
        "error_kinds": dict(Counter(r.error.split(":", 1)[0] for r in measured if r.error)),
        "sessions": len({r.session for r in measured}),
        "duration_s": duration,
        "requests_per_s": len(ok) / duration,
        "output_tokens_per_s": float(requests.output_tokens.sum()) / duration,
        "output_tokens_total": int(requests.output_tokens.sum()),
        "prompt_tokens_total": int(sum(r.prompt_tokens or 0 for r in ok)),
        "token_count_source": dict(Counter(r.token_source for r in ok)),
        "goodput_requests_per_s": int(good_mask.sum()) / duration,
        "good_fraction": float(good_mask.mean()) if good_mask.size else 0.0,
        "slo_met": all(slo_checks.values()) if slo_checks else None,
        "slo_checks": slo_checks,
        "achieved_request_rate": achieved_rate,
        **schedule_figures(measured, load),
        "prefix_cache": prefix_cache_figures(ok, counters),
        "ttft_ms": distribution_ms(requests.ttft),
        "ttft_ms_by_turn": ttft_by_turn(ok),
        "tpot_ms": distribution_ms(requests.tpot),
        "itl_ms": distribution_ms(requests.itl),
        "e2e_ms": distribution_ms(requests.e2e),
        "output_tokens": {
            k: (v / 1000.0 if v is not None else None)
            for k, v in distribution_ms(requests.output_tokens).items()
        },
    }
