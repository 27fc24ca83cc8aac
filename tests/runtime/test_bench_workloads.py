"""The benchmark client's workloads end to end against the fake OpenAI server: conversation datasets
(ShareGPT JSON array, from a local path or Azure Blob via Azurite) sent as multi-turn conversations with
think time, shared-prefix prompts with the prefix-cache hit rate, a trace replayed at its recorded
times, and a point that could not keep its rate saying so.

The prefix cache here is the fake server's stand-in (`fake_server.PrefixCache`: word blocks, vLLM's
counter names), since no engine with a prefix cache runs on this CPU: the tests check that the client
reports what the server counted, not how well any engine caches."""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_serve.bench.cli import run
from modelfleet_serve.bench.fake_server import running
from modelfleet_serve.bench.point import measure
from modelfleet_serve.bench.results import REQUESTS_CSV, RESULTS_JSON, TRACE_JSONL

from hack import tinymodel

pytestmark = pytest.mark.runtime

THINK_SECONDS = 0.05
CONVERSATIONS = [
    {
        "id": f"c{c}",
        "conversations": [
            {"from": "system", "value": "You are terse."},
            *(
                message
                for turn in range(3)
                for message in (
                    {"from": "human", "value": f"conversation {c} question {turn} " + "word " * (5 + turn)},
                    {"from": "gpt", "value": f"answer {turn}"},
                )
            ),
        ],
    }
    for c in range(3)
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running(2.0, 1.0, "--prefix-block", "4", "--prompt-tokens-details") as url:
        yield url


@pytest.fixture(scope="module")
def sharegpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ShareGPT file as published: one JSON array of conversations."""
    path = tmp_path_factory.mktemp("data") / "sharegpt.json"
    path.write_text(json.dumps(CONVERSATIONS, indent=1))
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokenizer")
    tinymodel.train_tokenizer(path)
    return path


def config(url: str, tmp_path: Path, workload: dict[str, Any], load: dict[str, Any], **extra: Any) -> Any:
    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": url,
            "model": "fake",
            "protocol": "openai-chat",
            "workload": workload,
            "load": load,
            "outputDir": str(tmp_path / "out"),
            **extra,
        }
    )


def counters(url: str) -> tuple[float, float]:
    """(lookups, hits) the fake's prefix cache counted so far."""
    with urllib.request.urlopen(f"{url}/metrics") as response:
        lines = dict(line.rsplit(" ", 1) for line in response.read().decode().splitlines() if line[0] != "#")
    return (
        float(lines['vllm:prefix_cache_queries_total{model_name="fake"}']),
        float(lines['vllm:prefix_cache_hits_total{model_name="fake"}']),
    )


def termination_log(tmp_path: Path) -> Path:
    """Where the point's figures go (Kubernetes creates the file in a container; here the test does)."""
    path = tmp_path / "termination-log"
    path.touch()
    return path


def read_trace(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out" / TRACE_JSONL).read_text().splitlines()]


def check_conversations(records: list[Any], trace: list[dict[str, Any]]) -> None:
    """Three conversations of three turns: each later turn sent its think time after the previous
    reply, with the whole conversation so far."""
    by_session: dict[int, list[Any]] = {}
    for record in records:
        by_session.setdefault(record.session, []).append(record)
    assert sorted(len(turns) for turns in by_session.values()) == [3, 3, 3]
    for turns in by_session.values():
        turns.sort(key=lambda r: r.turn)
        assert [r.turn for r in turns] == [0, 1, 2] and all(r.ok for r in turns)
        for before, after in itertools.pairwise(turns):
            assert after.scheduled == pytest.approx(before.end + THINK_SECONDS, abs=1e-9)
            assert after.start >= after.scheduled
            # the server counted the conversation so far: the earlier turns and its own replies
            assert after.prompt_tokens > before.prompt_tokens + before.output_tokens
    last = next(line for line in trace if line["turn"] == 2)
    roles = [m["role"] for m in last["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert last["messages"][1]["content"] == "tok " * 4  # the server's reply, not the dataset's
    assert last["messages"][4]["content"].startswith(f"conversation {last['session'] % 3} question 2")


def test_sharegpt_conversations_run_as_multi_turn_chats_with_think_time(
    server: str, sharegpt: Path, tmp_path: Path
) -> None:
    workload = {
        "promptsFile": {"uri": str(sharegpt), "outputTokens": {"mean": 4}},
        "multiTurn": {"turns": 3, "thinkTime": {"meanSeconds": THINK_SECONDS}},
    }
    bench = config(server, tmp_path, workload, {"mode": "closed-loop", "concurrency": 2, "requests": 9})
    measured = measure(bench)
    summary = measured.document["summary"]
    assert summary["completed"] == 9 and summary["sessions"] == 3
    assert sorted(summary["ttft_ms_by_turn"]) == ["0", "1", "2"]
    run(bench, termination_log(tmp_path))
    check_conversations(measured.records, read_trace(tmp_path))
    # later turns find the conversation's earlier turns in the (stand-in) prefix cache
    later = [r for r in measured.records if r.turn > 0]
    assert all((r.cached_tokens or 0) > 0 for r in later)


def test_open_loop_conversations_start_at_the_rate_and_follow_their_replies(
    server: str, sharegpt: Path, tmp_path: Path
) -> None:
    workload = {
        "promptsFile": {"uri": str(sharegpt), "outputTokens": {"mean": 4}},
        "multiTurn": {"turns": 3, "thinkTime": {"meanSeconds": THINK_SECONDS}},
    }
    load = {"mode": "open-loop", "requestRate": 20, "arrival": "constant", "requests": 9}
    measured = measure(config(server, tmp_path, workload, load))
    firsts = sorted((r for r in measured.records if r.turn == 0), key=lambda r: r.scheduled)
    assert [round(b.scheduled - a.scheduled, 6) for a, b in itertools.pairwise(firsts)] == [0.05] * 2
    run(config(server, tmp_path, workload, load), termination_log(tmp_path))
    check_conversations(measure(config(server, tmp_path, workload, load)).records, read_trace(tmp_path))


def test_a_dataset_is_read_from_azure_blob(
    server: str, sharegpt: Path, azurite: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    if not service.get_container_client("datasets").exists():
        service.create_container("datasets")
    service.get_blob_client("datasets", "chat/sharegpt.json").upload_blob(
        sharegpt.read_bytes(), overwrite=True
    )
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    uri = "https://devstoreaccount1.blob.core.windows.net/datasets/chat/sharegpt.json"
    workload = {"promptsFile": {"uri": uri, "outputTokens": {"mean": 4}}}
    measured = measure(
        config(server, tmp_path, workload, {"mode": "closed-loop", "concurrency": 1, "requests": 3})
    )
    assert measured.document["summary"]["completed"] == 3
    # without multiTurn each conversation's first user turn is the prompt
    assert [s.turns[0].prompt for s in measured.sessions.sessions] == [
        CONVERSATIONS[c]["conversations"][1]["value"] for c in range(3)
    ]


@pytest.mark.parametrize("details", [True, False], ids=["usage-cached-tokens", "engine-counters"])
def test_shared_prefix_prompts_report_the_hit_rate_the_server_counted(
    details: bool, tokenizer_dir: Path, tmp_path: Path
) -> None:
    """With cached tokens in the responses the client sums them; without, it reads the engine's
    counters before and after the measured phase. Either way: what the (stand-in) cache counted."""
    shared = {
        "prefixes": 3,
        "suffixesPerPrefix": 5,
        "prefixTokens": 120,
        "suffixTokens": {"mean": 8},
        "outputTokens": {"mean": 2},
    }
    extra = ("--prompt-tokens-details",) if details else ()
    with running(1.0, 1.0, "--prefix-block", "4", *extra) as url:
        bench = config(
            url,
            tmp_path,
            {"sharedPrefix": shared},
            {"mode": "closed-loop", "concurrency": 2, "requests": 15},
            tokenizer=str(tokenizer_dir),
        )
        before = counters(url)
        run(bench, termination_log(tmp_path))
        after = counters(url)
    prompts = [s.turns[0].prompt for s in measure_prompts(bench)]
    assert len(set(prompts)) == 15
    prefixes = {p[:40] for p in prompts}
    assert len(prefixes) == 3
    summary = json.loads((tmp_path / "out" / RESULTS_JSON).read_text())["summary"]
    cache = summary["prefix_cache"]
    expected_source = (
        "usage.prompt_tokens_details.cached_tokens" if details else "vllm:prefix_cache_hits_total"
    )
    assert cache["source"] == expected_source
    # no warm-up: the test's own reads of the counters bracket exactly the measured requests
    lookups, hits = after[0] - before[0], after[1] - before[1]
    assert cache["hit_rate"] == pytest.approx(hits / lookups) and hits / lookups > 0.5
    message = PointMetrics.model_validate_json((tmp_path / "termination-log").read_text())
    assert message.prefix_cache_hit_rate == pytest.approx(cache["hit_rate"], abs=1e-4)


def measure_prompts(bench: BenchmarkRuntimeConfig) -> list[Any]:
    """The sessions a config sends, built again (the same seed gives the same prompts)."""
    from modelfleet_serve.bench import workload
    from modelfleet_serve.bench.workload import load_tokenizer

    load = bench.load
    return workload.build(
        bench.workload, load.warmup_requests, load.requests or 0, load_tokenizer(bench.tokenizer)
    ).measured


def test_a_trace_is_replayed_at_its_recorded_times_scaled_to_the_rate(server: str, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"prompt number {i}"}) + "\n" for i in range(10)))
    record = config(
        server,
        tmp_path / "recorded",
        {
            "promptsFile": {
                "uri": str(prompts),
                "outputTokens": {"distribution": "uniform", "mean": 3, "min": 1, "max": 6},
            }
        },
        {"mode": "open-loop", "requestRate": 20, "arrival": "poisson", "requests": 20},
    )
    run(record, termination_log(tmp_path))
    recorded = read_trace(tmp_path / "recorded")
    replay = config(
        server,
        tmp_path / "replayed",
        {"trace": {"uri": str(tmp_path / "recorded" / "out" / TRACE_JSONL)}},
        {"mode": "open-loop", "requestRate": 40, "arrival": "trace", "requests": 20},
    )
    measured = measure(replay)
    records = sorted(measured.records, key=lambda r: r.index)
    # the same requests, in the recorded order ...
    sent = [measured.sessions.session(r.session).turns[0] for r in records]
    assert [((*s.history, ("user", s.prompt)), s.max_tokens) for s in sent] == [
        (tuple((m["role"], m["content"]) for m in line["messages"]), line["max_tokens"]) for line in recorded
    ]
    # ... planned at the recorded offsets, twice as fast (the recorded mean rate was 20/s)
    offsets = [line["offset_s"] for line in recorded]
    recorded_rate = (len(offsets) - 1) / offsets[-1]
    planned = [r.scheduled - records[0].scheduled for r in records]
    assert planned == pytest.approx([o * recorded_rate / 40 for o in offsets], abs=1e-6)


def test_a_point_that_could_not_keep_its_rate_is_marked(tmp_path: Path) -> None:
    """One request at a time (maxInFlight 1) against 100 ms responses cannot send 50 a second: most
    requests wait for the slot, which the results, the termination message and the log say."""
    with running(100.0, 1.0) as url:
        bench = config(
            url,
            tmp_path,
            {
                "promptsFile": {
                    "uri": str(Path(__file__).parents[2] / "examples/bench/sharegpt-sample.jsonl"),
                    "outputTokens": {"mean": 1},
                }
            },
            {"mode": "open-loop", "requestRate": 50, "arrival": "constant", "requests": 10, "maxInFlight": 1},
        )
        run(bench, termination_log(tmp_path))
    summary = json.loads((tmp_path / "out" / RESULTS_JSON).read_text())["summary"]
    assert summary["held_load"] is False
    assert summary["queued_requests"] >= 8 and summary["late_requests"] >= 8
    assert summary["schedule_lag_ms"]["p99"] > 500
    lags = [
        float(row.split(",")[3]) for row in (tmp_path / "out" / REQUESTS_CSV).read_text().splitlines()[1:]
    ]
    assert summary["late_requests"] == sum(lag > summary["late_threshold_ms"] for lag in lags)
    message = PointMetrics.model_validate_json((tmp_path / "termination-log").read_text())
    assert message.held_load is False and message.late_requests == summary["late_requests"]
    assert message.schedule_lag_p99_ms == pytest.approx(summary["schedule_lag_ms"]["p99"], abs=1e-3)
