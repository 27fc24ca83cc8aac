"""The Unsloth backend's configuration (it needs a CUDA GPU, so on this machine only its arguments and
its refusals can run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_train.config import Machine, check_config
from modelfleet_train.methods.unsloth import load_kwargs, peft_kwargs, unsloth_model

pytestmark = pytest.mark.unit


def config(tmp_path: Path, **changes: Any) -> TrainingRuntimeConfig:
    wire: dict[str, Any] = {
        "job": {"name": "demo", "namespace": "team-a"},
        "model": {"uri": str(tmp_path)},
        "dataset": {"uri": "/data/train.jsonl"},
        "method": {"type": "qlora", "backend": "unsloth", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
        "strategy": {"type": "ddp"},
        "hyperparameters": {"sequenceLength": 4096, "gradientCheckpointing": True, "seed": 3},
        "output": {"uri": "/out"},
        "topology": {"nodes": 1, "gpusPerNode": 1},
    }
    return TrainingRuntimeConfig.model_validate(wire | changes)


def test_qlora_loads_in_4bit_with_the_specs_sequence_length_and_adapters(tmp_path: Path) -> None:
    qlora = config(tmp_path)
    assert load_kwargs(qlora, torch.bfloat16) == {
        "model_name": str(tmp_path),
        "max_seq_length": 4096,
        "dtype": torch.bfloat16,
        "load_in_4bit": True,
        "revision": None,
        "trust_remote_code": False,
    }
    assert peft_kwargs(qlora) == {
        "r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "bias": "none",
        "use_gradient_checkpointing": "unsloth",
        "random_state": 3,
    }


def test_lora_keeps_the_base_in_its_precision_and_all_linear_names_every_projection(tmp_path: Path) -> None:
    lora = config(
        tmp_path, method={"type": "lora", "backend": "unsloth", "lora": {"targetModules": ["all-linear"]}}
    )
    assert load_kwargs(lora, torch.bfloat16)["load_in_4bit"] is False
    assert peft_kwargs(lora)["target_modules"] == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]


def test_on_cpu_validate_and_loading_refuse_unsloth_naming_the_field(tmp_path: Path) -> None:
    unsloth = config(tmp_path, method={"type": "lora", "backend": "unsloth"})
    problems = check_config(unsloth, Machine(cuda_available=False))
    assert [(p.field, p.message) for p in problems] == [
        ("method.backend", "unsloth needs a CUDA GPU and none is visible; use backend peft on CPU")
    ]
    with pytest.raises(RuntimeError, match=r"method\.backend: unsloth needs a CUDA GPU"):
        unsloth_model(unsloth, torch.bfloat16)


def test_on_a_gpu_node_without_unsloth_the_image_is_named(tmp_path: Path) -> None:
    problems = check_config(
        config(tmp_path, method={"type": "lora", "backend": "unsloth"}), Machine(cuda_available=True)
    )
    assert [p.field for p in problems] == ["method.backend"]
    assert "unsloth is not installed in this image" in problems[0].message


def test_unsloth_is_refused_for_full_training_and_sharded_strategies(tmp_path: Path) -> None:
    wrong = config(tmp_path, method={"type": "full", "backend": "unsloth"}, strategy={"type": "fsdp"})
    fields = [p.field for p in check_config(wrong, Machine(cuda_available=False))]
    assert fields[:2] == ["method.backend", "strategy.type"]
