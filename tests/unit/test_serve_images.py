"""Which image a serving pod runs: each engine's own by default (its upstream image plus the launcher),
overridable per engine in the operator's settings (the chart's values) and per resource."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType
from modelfleet_operator.config import DEFAULT_SERVING_IMAGES, load_config, serving_image_variable
from modelfleet_operator.serving import builders

pytestmark = pytest.mark.unit

IMAGES = {engine: f"serve-{engine.value}:1" for engine in EngineType}


def spec_of(**fields: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": {"uri": "org/model"}, **fields})


def test_each_engine_has_its_own_default_image() -> None:
    assert DEFAULT_SERVING_IMAGES == {
        EngineType.VLLM: "ghcr.io/modelfleet/serving-vllm:0.1.0",
        EngineType.TGI: "ghcr.io/modelfleet/serving-tgi:0.1.0",
        EngineType.SGLANG: "ghcr.io/modelfleet/serving-sglang:0.1.0",
        EngineType.LMDEPLOY: "ghcr.io/modelfleet/serving-lmdeploy:0.1.0",
        EngineType.TRITON_TRTLLM: "ghcr.io/modelfleet/serving-triton-trtllm:0.1.0",
        EngineType.TRANSFORMERS: "ghcr.io/modelfleet/runtime-cpu:0.1.0",
    }
    config = load_config([], {})
    assert config.serving_images == DEFAULT_SERVING_IMAGES
    assert config.benchmark_image == "ghcr.io/modelfleet/runtime-cpu:0.1.0"


def test_an_engines_variable_wins_over_the_image_of_every_engine() -> None:
    env = {
        "MODELFLEET_SERVING_IMAGE": "every:1",
        serving_image_variable(EngineType.TRITON_TRTLLM): "triton:2",
        "MODELFLEET_SERVING_IMAGE_SGLANG": "sglang:3",
    }
    assert serving_image_variable(EngineType.TRITON_TRTLLM) == "MODELFLEET_SERVING_IMAGE_TRITON_TRTLLM"
    config = load_config([], env)
    assert config.serving_images == {
        EngineType.VLLM: "every:1",
        EngineType.TGI: "every:1",
        EngineType.SGLANG: "sglang:3",
        EngineType.LMDEPLOY: "every:1",
        EngineType.TRITON_TRTLLM: "triton:2",
        EngineType.TRANSFORMERS: "every:1",
    }
    # The benchmark client follows the image of every engine (a CPU image holds both), unless named.
    assert config.benchmark_image == "every:1"
    assert load_config([], {**env, "MODELFLEET_BENCHMARK_IMAGE": "bench:4"}).benchmark_image == "bench:4"
    flagged = load_config(["--serving-image", "flag:5"], {"MODELFLEET_SERVING_IMAGE_TGI": "tgi:6"})
    assert (
        flagged.serving_images[EngineType.VLLM] == "flag:5"
        and flagged.serving_images[EngineType.TGI] == "tgi:6"
    )


def test_a_track_runs_its_engines_image_unless_the_resource_names_one() -> None:
    assert [t.image for t in builders.tracks(spec_of(engine={"type": "sglang"}), IMAGES)] == [
        "serve-sglang:1"
    ]
    assert [t.image for t in builders.tracks(spec_of(image="mine:1"), IMAGES)] == ["mine:1"]


def test_a_canary_on_another_engine_gets_that_engines_image() -> None:
    """The stable track's own image is for the stable engine: a canary running another engine without
    an image of its own gets its engine's default, not an image that cannot start it."""
    spec = spec_of(image="my-vllm:1", canary={"engine": {"type": "sglang"}})
    assert [t.image for t in builders.tracks(spec, IMAGES)] == ["my-vllm:1", "serve-sglang:1"]
    same_engine = spec_of(image="my-vllm:1", canary={"model": {"uri": "org/model-v2"}})
    assert [t.image for t in builders.tracks(same_engine, IMAGES)] == ["my-vllm:1", "my-vllm:1"]
    own = spec_of(image="my-vllm:1", canary={"engine": {"type": "sglang"}, "image": "my-sglang:2"})
    assert [t.image for t in builders.tracks(own, IMAGES)] == ["my-vllm:1", "my-sglang:2"]
