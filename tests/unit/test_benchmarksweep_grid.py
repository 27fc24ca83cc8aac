"""Expanding a BenchmarkSweep spec into targets and points (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec
from modelfleet_operator.benchmark.grid import InvalidSweep, expand_points, expand_targets
from modelfleet_operator.benchmark.names import ChildNames, fit_label

pytestmark = pytest.mark.unit

TEMPLATE = {
    "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
    "engine": {"type": "vllm"},
    "resources": {"instanceType": "Standard_ND96isr_H100_v5", "gpusPerReplica": 2},
}


def spec(*targets: dict[str, Any], **extra: Any) -> BenchmarkSweepSpec:
    return BenchmarkSweepSpec.model_validate(
        {
            "targets": list(targets),
            "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}},
            "load": {"concurrency": [1, 4, 16], "requests": 100},
            **extra,
        }
    )


def test_axes_expand_to_the_cross_product_with_deterministic_names() -> None:
    sweep = spec(
        {
            "name": "llama",
            "template": TEMPLATE,
            "axes": {"engine": ["vllm", "sglang"], "tensorParallelSize": [1, 2]},
        },
        {"name": "prod", "deploymentRef": "llama-prod"},
    )
    targets = expand_targets(ChildNames("sw", "ml"), sweep)
    assert [(t.name, t.deployment, t.owned) for t in targets] == [
        ("llama(engine=vllm,tp=1)", "sw-llama-0", True),
        ("llama(engine=vllm,tp=2)", "sw-llama-1", True),
        ("llama(engine=sglang,tp=1)", "sw-llama-2", True),
        ("llama(engine=sglang,tp=2)", "sw-llama-3", True),
        ("prod", "llama-prod", False),
    ]
    third = targets[2].template
    assert third is not None
    assert (third.engine.type, third.engine.settings.tensor_parallel_size) == ("sglang", 1)
    assert third.model.uri == "meta-llama/Llama-3.1-8B-Instruct" and third.resources.gpus_per_replica == 2


def test_template_without_axes_is_one_deployment_under_the_target_name() -> None:
    (target,) = expand_targets(ChildNames("sw", "ml"), spec({"name": "one", "template": TEMPLATE}))
    assert (target.name, target.deployment) == ("one", "sw-one-0")


def test_quantization_axis_none_clears_and_unsupported_engine_is_named() -> None:
    axes = {"quantization": ["none", "fp8"], "tensorParallelSize": [2]}
    targets = expand_targets(ChildNames("sw", "ml"), spec({"name": "q", "template": TEMPLATE, "axes": axes}))
    assert [t.template.engine.settings.quantization for t in targets if t.template] == [None, "fp8"]
    assert [t.name for t in targets] == ["q(quantization=none)", "q(quantization=fp8)"]  # tp does not vary
    assert {t.template.engine.settings.tensor_parallel_size for t in targets if t.template} == {2}
    bad = spec({"name": "q", "template": TEMPLATE, "axes": {"engine": ["lmdeploy"], "quantization": ["fp8"]}})
    with pytest.raises(InvalidSweep, match=r"spec.targets\[0\].axes.quantization: fp8 .* lmdeploy"):
        expand_targets(ChildNames("sw", "ml"), bad)


def test_two_targets_on_one_deployment_are_refused() -> None:
    sweep = spec({"name": "a", "deploymentRef": "x"}, {"name": "b", "deploymentRef": "x"})
    with pytest.raises(InvalidSweep, match=r"spec\.targets: two targets measure the same deployment x"):
        expand_targets(ChildNames("sw", "ml"), sweep)


def test_points_are_target_major_then_lengths_then_load() -> None:
    sweep = spec(
        {"name": "a", "deploymentRef": "a"},
        {"name": "b", "deploymentRef": "b"},
        tokenLengths=[{"inputTokens": 512, "outputTokens": 128}, {"inputTokens": 2048, "outputTokens": 256}],
    )
    points = expand_points(expand_targets(ChildNames("sw", "ml"), sweep), sweep)
    described = [
        (p.index, p.target.deployment, p.lengths.input_tokens if p.lengths else None, p.load.label)
        for p in points
    ]
    assert described[:4] == [
        (0, "a", 512, "concurrency=1"),
        (1, "a", 512, "concurrency=4"),
        (2, "a", 512, "concurrency=16"),
        (3, "a", 2048, "concurrency=1"),
    ]
    assert len(points) == 12 and described[6] == (6, "b", 512, "concurrency=1")


def test_open_loop_points_carry_the_rate_and_arrival() -> None:
    sweep = spec(
        {"name": "a", "deploymentRef": "a"},
        load={"mode": "open-loop", "requestRates": [2, 8.5], "arrival": "constant", "durationSeconds": 60},
    )
    points = expand_points(expand_targets(ChildNames("sw", "ml"), sweep), sweep)
    assert [p.load.label for p in points] == ["rate=2/s (constant)", "rate=8.5/s (constant)"]
    assert points[1].load.duration_seconds == 60 and points[1].load.request_rate == 8.5


def test_long_names_are_shortened_to_a_unique_dns_label() -> None:
    long = "a" * 60
    first, second = fit_label(f"{long}-x-0"), fit_label(f"{long}-x-1")
    assert len(first) == 63 and len(second) == 63 and first != second
    assert fit_label("short-name") == "short-name"
