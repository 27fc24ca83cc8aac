"""Result files: `results.json` (summary and run description, machine-readable), `requests.csv` (one
row per measured request) and `trace.jsonl` (every measured request as sent, replayable with
`workload.trace`); and the point's key figures for the termination message."""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_api.quality import PointQuality

from modelfleet_serve.bench.records import RequestRecord
from modelfleet_serve.bench.schedule import SessionPlan

TERMINATION_LOG = Path("/dev/termination-log")
"""Kubernetes shows this file's content as the container's termination message (at most 4 KiB)."""
RESULTS_JSON = "results.json"
REQUESTS_CSV = "requests.csv"
TRACE_JSONL = "trace.jsonl"
CSV_COLUMNS = (
    "index",
    "session",
    "turn",
    "schedule_lag_ms",
    "ttft_ms",
    "e2e_ms",
    "tpot_ms",
    "output_tokens",
    "prompt_tokens",
    "chunks",
    "token_source",
    "error",
)


def request_row(record: RequestRecord) -> dict[str, Any]:
    ttft = (record.chunk_times[0] - record.start) * 1000.0 if record.chunk_times else None
    e2e = (record.end - record.start) * 1000.0
    tokens = record.output_tokens
    tpot = (e2e - ttft) / (tokens - 1) if ttft is not None and tokens and tokens > 1 and record.ok else None
    return {
        "index": record.index,
        "session": record.session,
        "turn": record.turn,
        "schedule_lag_ms": round((record.start - record.scheduled) * 1000.0, 4),
        "ttft_ms": round(ttft, 4) if ttft is not None else None,
        "e2e_ms": round(e2e, 4),
        "tpot_ms": round(tpot, 4) if tpot is not None else None,
        "output_tokens": tokens,
        "prompt_tokens": record.prompt_tokens,
        "chunks": len(record.chunk_times),
        "token_source": record.token_source if record.ok else None,
        "error": record.error,
    }


def trace_lines(sessions: SessionPlan, records: Sequence[RequestRecord], chat: bool) -> Iterator[str]:
    """One JSON line per measured request, in the order they were sent: what was sent (`messages`
    with the conversation so far for chat, else `prompt`; `max_tokens`), when (`offset_s` after the
    first request's start) and what came back. `workload.trace` replays these lines."""
    measured = sorted((r for r in records if not r.warmup), key=lambda r: r.start)
    if not measured:
        return
    replies = {(r.session, r.turn): r.text for r in measured if r.ok}
    first = measured[0].start
    for record in measured:
        turns = sessions.session(record.session).turns
        request = turns[record.turn]
        line: dict[str, Any] = {"index": record.index, "session": record.session, "turn": record.turn,
                                "offset_s": round(record.start - first, 6)}  # fmt: skip
        if chat:
            messages = [{"role": role, "content": content} for role, content in request.history]
            for earlier in range(record.turn):
                messages.append({"role": "user", "content": turns[earlier].prompt})
                messages.append({"role": "assistant", "content": replies.get((record.session, earlier), "")})
            line["messages"] = [*messages, {"role": "user", "content": request.prompt}]
        else:
            line["prompt"] = request.prompt
        row = request_row(record)
        line.update(
            max_tokens=request.max_tokens,
            prompt_tokens=record.prompt_tokens or request.prompt_tokens,
            cached_tokens=record.cached_tokens,
            output_tokens=record.output_tokens,
            ttft_ms=row["ttft_ms"],
            e2e_ms=row["e2e_ms"],
            error=record.error,
        )
        yield json.dumps(line, ensure_ascii=False)


def write_results(
    output_dir: Path,
    document: dict[str, Any],
    records: Sequence[RequestRecord],
    sessions: SessionPlan,
    chat: bool,
) -> list[Path]:
    """`results.json`, `requests.csv` and `trace.jsonl` in `output_dir`; their paths, that order."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RESULTS_JSON).write_text(json.dumps(document, indent=2) + "\n")
    with (output_dir / REQUESTS_CSV).open("w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(request_row(r) for r in records if not r.warmup)
    with (output_dir / TRACE_JSONL).open("w") as sink:
        sink.writelines(line + "\n" for line in trace_lines(sessions, records, chat))
    return [output_dir / RESULTS_JSON, output_dir / REQUESTS_CSV, output_dir / TRACE_JSONL]


FIGURE_DECIMALS = 3
"""Decimals of the key figures in the termination message (and so in the sweep's status and `kubectl
get`): a microsecond, a thousandth of a token or request per second. results.json keeps full precision."""
ERROR_RATE_DECIMALS = 4
TERMINATION_MESSAGE_LIMIT = 4096
"""Kubernetes keeps at most this many bytes of a termination message."""


def _figure(value: float | None, decimals: int = FIGURE_DECIMALS) -> float | None:
    return None if value is None else round(float(value), decimals)


def point_metrics(
    summary: dict[str, Any],
    results_uri: str | None = None,
    sink_errors: Sequence[str] = (),
    quality: PointQuality | None = None,
) -> PointMetrics:
    """The key figures of a summary, as a BenchmarkSweep records them for the point, with where its
    files were uploaded, which sinks failed and the quality scores."""
    return PointMetrics(
        ttft_p95_ms=_figure(summary["ttft_ms"]["p95"]),
        tpot_p95_ms=_figure(summary["tpot_ms"]["p95"]),
        e2e_p95_ms=_figure(summary["e2e_ms"]["p95"]),
        output_tokens_per_second=_figure(summary["output_tokens_per_s"]),
        requests_per_second=_figure(summary["requests_per_s"]),
        goodput=_figure(summary["goodput_requests_per_s"]),
        error_rate=_figure(summary["error_rate"], ERROR_RATE_DECIMALS),
        meets_slos=summary["slo_met"],
        achieved_request_rate=_figure(summary["achieved_request_rate"]),
        held_load=summary["held_load"],
        schedule_lag_p50_ms=_figure(summary["schedule_lag_ms"]["p50"]),
        schedule_lag_p99_ms=_figure(summary["schedule_lag_ms"]["p99"]),
        late_requests=summary["late_requests"],
        prefix_cache_hit_rate=_figure(summary["prefix_cache"]["hit_rate"], ERROR_RATE_DECIMALS),
        results_uri=results_uri,
        sink_errors=list(sink_errors) or None,
        quality=quality,
    )


def termination_message(metrics: PointMetrics, floored: Collection[str] = ()) -> str:
    """Compact JSON of the metrics, within TERMINATION_MESSAGE_LIMIT bytes. The API bounds every field
    but the quality scores (sink errors are short and at most SINK_ERRORS_MAX; floors at most
    MAX_FLOORS, with short names), so this always fits: when it would not, the quality scores other
    than the `floored` ones give way first (their number is said in `scoresLeftOut`), then the sink
    errors give way to a note, rather than the figures being cut."""
    text = _compact(metrics)
    quality = metrics.quality
    if len(text.encode()) > TERMINATION_MESSAGE_LIMIT and quality is not None:
        kept = {name: value for name, value in quality.scores.items() if name in floored}
        if len(kept) < len(quality.scores):
            left_out = len(quality.scores) - len(kept)
            trimmed = quality.model_copy(update={"scores": kept, "scores_left_out": left_out})
            metrics = metrics.model_copy(update={"quality": trimmed})
            text = _compact(metrics)
    if len(text.encode()) > TERMINATION_MESSAGE_LIMIT:
        note = f"{len(metrics.sink_errors or [])} sink(s) failed; the pod's log says why"
        text = _compact(metrics.model_copy(update={"sink_errors": [note]}))
    return text


def _compact(metrics: PointMetrics) -> str:
    return metrics.model_dump_json(by_alias=True, exclude_none=True)


def write_termination_message(
    metrics: PointMetrics, path: Path = TERMINATION_LOG, floored: Collection[str] = ()
) -> bool:
    """Write the point's key figures as compact JSON where the operator reads them; False outside a
    container (Kubernetes creates the file in every container)."""
    if not path.exists():
        return False
    path.write_text(termination_message(metrics, floored))
    return True
