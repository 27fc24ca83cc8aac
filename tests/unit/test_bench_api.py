"""The benchmark API's workload sources, multi-turn, shared-prefix, trace replay and search: what the
models accept and what they refuse, naming the field (the CRD's CEL twins: tests/cluster)."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, LoadPattern, LoadPoint
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec
from modelfleet_operator.benchmark.grid import InvalidSweep, expand_targets
from modelfleet_operator.benchmark.names import ChildNames
from pydantic import ValidationError

pytestmark = pytest.mark.unit

SYNTHETIC = {"synthetic": {"inputTokens": {"mean": 8}, "outputTokens": {"mean": 4}}}
SHARED_PREFIX = {
    "sharedPrefix": {
        "prefixes": 4,
        "suffixesPerPrefix": 8,
        "prefixTokens": 256,
        "suffixTokens": {"mean": 16},
        "outputTokens": {"mean": 8},
    }
}


def runtime(
    workload: dict[str, Any], load: dict[str, Any] | None = None, **extra: Any
) -> BenchmarkRuntimeConfig:
    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": "http://x:8000",
            "model": "m",
            "workload": workload,
            "load": load or {"mode": "closed-loop", "concurrency": 1, "requests": 1},
            **extra,
        }
    )


def sweep(workload: dict[str, Any], load: dict[str, Any], **extra: Any) -> BenchmarkSweepSpec:
    return BenchmarkSweepSpec.model_validate(
        {"targets": [{"name": "a", "deploymentRef": "d"}], "workload": workload, "load": load, **extra}
    )


def test_workload_sources_are_exclusive() -> None:
    with pytest.raises(
        ValidationError, match=r"exactly one of promptsFile, synthetic, sharedPrefix and trace"
    ):
        runtime({**SYNTHETIC, **SHARED_PREFIX})
    with pytest.raises(ValidationError, match=r"exactly one of"):
        runtime({})
    assert runtime(SHARED_PREFIX).workload.shared_prefix is not None
    assert runtime({"trace": {"uri": "/data/trace.jsonl"}}).workload.trace is not None


def test_multi_turn_needs_conversations_and_chat() -> None:
    conversations = {"promptsFile": {"uri": "/data/sharegpt.json"}, "multiTurn": {"turns": 3}}
    config = runtime(conversations)
    assert config.workload.multi_turn is not None and config.workload.multi_turn.think_time.mean_seconds == 0
    with pytest.raises(ValidationError, match=r"workload.multiTurn: .* need protocol openai-chat"):
        runtime(conversations, protocol="openai-completions")
    with pytest.raises(ValidationError, match=r"workload.multiTurn: needs promptsFile or synthetic"):
        runtime({**SHARED_PREFIX, "multiTurn": {}})
    with pytest.raises(ValidationError, match=r"minSeconds .* must be <= maxSeconds"):
        runtime({**SYNTHETIC, "multiTurn": {"thinkTime": {"minSeconds": 5, "maxSeconds": 1}}})


def test_trace_arrivals_need_a_trace() -> None:
    open_loop = {"mode": "open-loop", "requestRate": 5, "arrival": "trace", "requests": 10}
    with pytest.raises(ValidationError, match=r"load.arrival: trace .* needs workload.trace"):
        runtime(SYNTHETIC, open_loop)
    assert runtime({"trace": {"uri": "/t.jsonl"}}, open_loop).load.arrival == "trace"
    with pytest.raises(ValidationError, match=r"load.arrival: trace"):
        sweep(SYNTHETIC, {"mode": "open-loop", "requestRates": [1], "arrival": "trace", "requests": 1})


def test_search_replaces_the_levels_and_needs_an_slo() -> None:
    search = {"mode": "open-loop", "requests": 10, "search": {"min": 1, "max": 100}}
    spec = sweep(SYNTHETIC, search, slos={"ttftP95Ms": 200})
    assert [p.request_rate for p in spec.load.points()] == [1.0]
    with pytest.raises(ValidationError, match=r"load.search: .* set at least one of slos"):
        sweep(SYNTHETIC, search)
    with pytest.raises(ValidationError, match=r"leave concurrency and requestRates empty"):
        LoadPattern.model_validate({**search, "requestRates": [1.0]})
    with pytest.raises(ValidationError, match=r"min and max must be whole numbers"):
        LoadPattern.model_validate({**search, "mode": "closed-loop", "search": {"min": 1.5, "max": 8}})
    with pytest.raises(ValidationError, match=r"load.search.min \(9\) must be <= max \(2\)"):
        LoadPattern.model_validate({**search, "search": {"min": 9, "max": 2}})


def test_a_point_at_a_level_keeps_the_pattern_bounds() -> None:
    pattern = LoadPattern.model_validate(
        {
            "mode": "closed-loop",
            "durationSeconds": 30,
            "warmupRequests": 3,
            "lateThresholdMs": 2,
            "search": {"min": 1, "max": 64},
        }
    )
    point = pattern.point_at(12)
    assert point == LoadPoint(
        mode="closed-loop", concurrency=12, duration_seconds=30, warmup_requests=3, late_threshold_ms=2
    )
    assert point.level == 12.0


def test_multi_turn_over_a_triton_template_is_refused_naming_the_target() -> None:
    template = {
        "model": {"uri": "/models/llama"},
        "engine": {"type": "triton-trtllm"},
        "resources": {"instanceType": "Standard_NC40adis_H100_v5", "gpusPerReplica": 1},
    }
    spec = BenchmarkSweepSpec.model_validate(
        {
            "targets": [{"name": "trt", "template": template}],
            "workload": {**SYNTHETIC, "multiTurn": {"turns": 2}},
            "load": {"concurrency": [1], "requests": 4},
        }
    )
    with pytest.raises(InvalidSweep, match=r"spec.workload.multiTurn: target trt runs triton-trtllm"):
        expand_targets(ChildNames("sw", "ml"), spec)
