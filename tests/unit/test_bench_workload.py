"""Workload files, sessions and their numbering, trace offsets, the engine's prefix-cache counters and
the schedule-keeping verdict (pure: no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelfleet_api.benchmark import LoadPoint, Workload
from modelfleet_serve.bench import datasets, workload
from modelfleet_serve.bench.engine_metrics import EngineCounters, hit_rate, parse_counters
from modelfleet_serve.bench.metrics import schedule_figures
from modelfleet_serve.bench.records import BenchRequest, RequestRecord, Session
from modelfleet_serve.bench.results import trace_lines
from modelfleet_serve.bench.schedule import SessionPlan

pytestmark = pytest.mark.unit

SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "be brief"},
        {"from": "human", "value": "hi"},
        {"from": "human", "value": "are you there?"},
        {"from": "gpt", "value": "yes"},
        {"from": "human", "value": "bye"},
    ]
}


def write(path: Path, records: list[Any], as_array: bool) -> Path:
    path.write_text(json.dumps(records) if as_array else "".join(json.dumps(r) + "\n\n" for r in records))
    return path


@pytest.mark.parametrize("as_array", [True, False], ids=["json-array", "jsonl"])
def test_datasets_read_sharegpt_openai_and_plain_prompts(tmp_path: Path, as_array: bool) -> None:
    rows = [
        SHAREGPT,
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"prompt": "just this"},
        {"text": "or this"},
    ]
    found = datasets.conversations(write(tmp_path / "d", rows, as_array), "f", None)
    assert found == [
        [datasets.Turn("hi\nare you there?", "yes"), datasets.Turn("bye", None)],
        [datasets.Turn("q", "a")],
        [datasets.Turn("just this", None)],
        [datasets.Turn("or this", None)],
    ]
    assert len(datasets.conversations(tmp_path / "d", "f", 2)) == 2


def test_dataset_errors_name_the_field_and_the_record(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"workload.promptsFile: .*/d line 3: has none of 'conversations'"):
        datasets.conversations(
            write(tmp_path / "d", [SHAREGPT, {"other": 1}], False), "workload.promptsFile", None
        )
    with pytest.raises(ValueError, match=r"record 0: has no user turn"):
        datasets.conversations(write(tmp_path / "e", [{"conversations": []}], True), "f", None)
    with pytest.raises(ValueError, match=r"f.uri: /nowhere.json is not a file here"):
        datasets.read_file("/nowhere.json", "f.uri", Path.read_text)


def prompts_file(tmp_path: Path, multi_turn: dict[str, Any] | None = None) -> Workload:
    path = write(tmp_path / "sharegpt.jsonl", [SHAREGPT, {"prompt": "solo"}], False)
    spec: dict[str, Any] = {"promptsFile": {"uri": f"file://{path}", "outputTokens": {"mean": 3}}}
    if multi_turn is not None:
        spec["multiTurn"] = multi_turn
    return Workload.model_validate(spec)


def test_sessions_hold_exactly_the_requests_asked_for(tmp_path: Path) -> None:
    spec = prompts_file(tmp_path, {"turns": 5, "thinkTime": {"meanSeconds": 1.5}})
    built = workload.build(spec, warmup=1, count=4, tokenizer=None)
    # warm-up: the first turn of the first conversation; then the dataset from its second record on
    assert [r.prompt for r in built.warmup] == ["hi\nare you there?"]
    assert [[t.prompt for t in s.turns] for s in built.measured] == [
        ["solo"],
        ["hi\nare you there?", "bye"],
        ["solo"],
    ]
    assert [s.think_seconds for s in built.measured] == [(), (1.5,), ()]
    single = workload.build(prompts_file(tmp_path), warmup=0, count=3, tokenizer=None)
    assert [[t.prompt for t in s.turns] for s in single.measured] == [
        ["hi\nare you there?"],
        ["solo"],
        ["hi\nare you there?"],
    ]


def test_plain_prompts_without_output_lengths_are_refused(tmp_path: Path) -> None:
    class Words:
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [0] * len(text.split())

    path = write(tmp_path / "p.jsonl", [{"prompt": "no reference"}], False)
    spec = Workload.model_validate({"promptsFile": {"uri": str(path)}})
    with pytest.raises(ValueError, match=r"has no reference reply .* set workload.promptsFile.outputTokens"):
        workload.build(spec, 0, 1, Words())  # type: ignore[arg-type]


def test_session_numbers_give_consecutive_request_indices_also_past_the_end() -> None:
    one, three = Session((BenchRequest("a", 1),)), Session(tuple(BenchRequest(p, 1) for p in "bcd"), (0, 0))
    plan = SessionPlan([one, three])
    assert plan.requests == 4 and not plan.single_turn
    assert [plan.first_index(n) for n in range(5)] == [0, 1, 4, 5, 8]
    assert plan.session(3) is three


def test_trace_offsets_are_scaled_to_the_rate_and_repeat_for_a_duration() -> None:
    plan = SessionPlan([Session((BenchRequest("x", 1),), (), offset) for offset in (10.0, 10.5, 12.0)])
    # recorded: a mean gap of 1 s; at 4/s the gaps shrink four times
    assert plan.trace_offsets(4.0, None).tolist() == [0.0, 0.125, 0.5]
    assert plan.trace_offsets(4.0, 1.4).tolist() == [0.0, 0.125, 0.5, 0.75, 0.875, 1.25]
    untimed = SessionPlan([Session((BenchRequest("x", 1),))])
    with pytest.raises(ValueError, match="needs an offset_s on every request"):
        untimed.trace_offsets(1.0, None)


def test_a_trace_file_replays_in_recorded_order_from_zero(tmp_path: Path) -> None:
    lines = [
        {"offset_s": 3.5, "prompt": "late", "max_tokens": 2},
        {
            "offset_s": 1.5,
            "messages": [
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "again"},
            ],
            "max_tokens": 4,
        },
    ]
    traced = datasets.trace(write(tmp_path / "t.jsonl", lines, False), "workload.trace", None)
    assert [(t.offset, t.prompt, t.history, t.max_tokens) for t in traced] == [
        (0.0, "again", (("user", "u"), ("assistant", "a")), 4),
        (2.0, "late", (), 2),
    ]
    with pytest.raises(ValueError, match=r"workload.trace: .* line 1: max_tokens: a positive integer"):
        datasets.trace(write(tmp_path / "bad.jsonl", [{"prompt": "p"}], False), "workload.trace", None)


def test_trace_lines_hold_the_conversation_as_it_was_sent() -> None:
    turns = (BenchRequest("first", 3, 1), BenchRequest("second", 2, 1))
    plan = SessionPlan([Session(turns, (0.5,))])
    records = [
        RequestRecord(
            0, False, 1.0, session=0, turn=0, start=1.0, chunk_times=[1.1], end=1.2, text_parts=["re"]
        ),
        RequestRecord(
            1,
            False,
            1.7,
            session=0,
            turn=1,
            start=1.75,
            chunk_times=[1.8],
            end=1.9,
            text_parts=["x"],
            prompt_tokens=9,
            cached_tokens=4,
        ),
    ]
    first, second = (json.loads(line) for line in trace_lines(plan, records, chat=True))
    assert first["messages"] == [{"role": "user", "content": "first"}] and first["offset_s"] == 0.0
    assert second["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "re"},
        {"role": "user", "content": "second"},
    ]
    assert (second["offset_s"], second["max_tokens"], second["prompt_tokens"], second["cached_tokens"]) == (
        0.75,
        2,
        9,
        4,
    )
    assert second["ttft_ms"] == pytest.approx(50.0)
    assert [json.loads(line)["prompt"] for line in trace_lines(plan, records, chat=False)] == [
        "first",
        "second",
    ]


VLLM = """# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_queries_total{engine="1",model_name="m"} 500.0
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 600.0
vllm:prefix_cache_hits_total{engine="1",model_name="m"} 150.0
"""
SGLANG = """sglang:prompt_tokens_total{model_name="m"} 4096
sglang:cached_tokens_total{model_name="m",cache_source="device"} 3000
sglang:cached_tokens_total{model_name="m",cache_source="host"} 168
"""


def test_engine_counters_are_summed_over_labels_and_differenced() -> None:
    assert parse_counters(VLLM) == EngineCounters(750.0, 1500.0, "vllm:prefix_cache_hits_total")
    assert parse_counters(SGLANG) == EngineCounters(3168.0, 4096.0, "sglang:cached_tokens_total")
    assert parse_counters("tgi_request_count 5\n") is None
    later = EngineCounters(950.0, 1900.0, "vllm:prefix_cache_hits_total")
    assert hit_rate(parse_counters(VLLM), later) == (0.5, "vllm:prefix_cache_hits_total")
    assert hit_rate(later, later) == (None, None)  # nothing looked up meanwhile
    assert hit_rate(None, later) == (None, None)


def sent(lags_ms: list[float], gap: float = 0.01) -> list[RequestRecord]:
    """Requests planned `gap` apart and sent `lags_ms` late."""
    return [
        RequestRecord(i, False, scheduled=i * gap, start=i * gap + lag / 1000.0)
        for i, lag in enumerate(lags_ms)
    ]


def test_a_load_is_held_when_at_most_one_percent_of_requests_are_late() -> None:
    load = LoadPoint(mode="open-loop", request_rate=100.0, requests=200)
    on_time = schedule_figures(sent([0.2] * 199 + [30.0]), load)
    assert (on_time["late_requests"], on_time["held_load"]) == (1, True)
    assert on_time["planned_arrival_rate"] == pytest.approx(100.0)
    three_late = schedule_figures(sent([0.2] * 197 + [30.0] * 3), load)
    assert (three_late["late_requests"], three_late["held_load"]) == (3, False)
    assert three_late["schedule_lag_ms"]["p50"] == pytest.approx(0.2)


def test_an_open_loop_sent_slower_than_planned_did_not_hold_its_rate() -> None:
    """Every request under the lateness threshold, but later and later: the rate was not kept."""
    load = LoadPoint(mode="open-loop", request_rate=100.0, requests=100, late_threshold_ms=25)
    drifting = schedule_figures(sent(list(np.linspace(0, 19.8, 100))), load)
    assert drifting["late_requests"] == 0 and drifting["held_load"] is False
    assert drifting["achieved_arrival_rate"] == pytest.approx(100 / 1.02)
    closed = LoadPoint(mode="closed-loop", concurrency=1, requests=100, late_threshold_ms=25)
    assert schedule_figures(sent(list(np.linspace(0, 19.8, 100))), closed)["held_load"] is True
