"""The benchmark's metrics, computed from request records after the run. Definitions: README."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from modelfleet_api.benchmark import Slos

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


def summarize(records: Sequence[RequestRecord], slos: Slos) -> dict[str, Any]:
    """Summary metrics of the measured (non-warm-up) requests."""
    measured = [r for r in records if not r.warmup]
    if not measured:
        raise ValueError("no measured requests completed (duration too short or every request was warm-up)")
    ok = [r for r in measured if r.ok]
    first_start = min(r.start for r in measured)
    duration = max(r.end for r in measured) - first_start
    requests = per_request(ok)
    starts = np.sort(np.array([r.start for r in measured]))
    achieved_rate = (
        (starts.size - 1) / (starts[-1] - starts[0]) if starts.size > 1 and starts[-1] > starts[0] else None
    )
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
        "ttft_ms": distribution_ms(requests.ttft),
        "tpot_ms": distribution_ms(requests.tpot),
        "itl_ms": distribution_ms(requests.itl),
        "e2e_ms": distribution_ms(requests.e2e),
        "scheduling_delay_ms": distribution_ms(np.array([r.start - r.scheduled for r in measured])),
        "output_tokens": {
            k: (v / 1000.0 if v is not None else None)
            for k, v in distribution_ms(requests.output_tokens).items()
        },
    }
