"""The DeepSpeed config generated from the spec, and the merge of the user's overrides over it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from modelfleet_train.config import parse_config
from modelfleet_train.strategies.deepspeed import deep_merge, generated_config, merged_config

pytestmark = pytest.mark.unit


def config(strategy: dict[str, Any], precision: str = "bf16", **hyperparameters: Any) -> Any:
    return parse_config(
        yaml.safe_dump(
            {
                "job": {"name": "j", "namespace": "n"},
                "model": {"uri": "/m"},
                "dataset": {"uri": "/d.jsonl"},
                "strategy": strategy,
                "precision": precision,
                "hyperparameters": {
                    "perDeviceBatchSize": 2,
                    "gradientAccumulationSteps": 4,
                    "learningRate": 1e-4,
                    "weightDecay": 0.01,
                    **hyperparameters,
                },
                "output": {"uri": "/out"},
                "topology": {"nodes": 1, "gpusPerNode": 8},
            }
        )
    )


def test_zero2_without_offload_uses_torch_adamw_and_spec_batch_sizes() -> None:
    generated = generated_config(config({"type": "deepspeed", "zeroStage": 2}), world_size=8)
    assert generated == {
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": 4,
        "train_batch_size": 64,
        "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
        "bf16": {"enabled": True},
        "fp16": {"enabled": False, "loss_scale": 0, "initial_scale_power": 16},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": 1e-4,
                "betas": [0.9, 0.999],
                "eps": 1e-8,
                "weight_decay": 0.01,
                "torch_adam": True,
            },
        },
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
        "gradient_clipping": 1.0,
    }


def test_zero3_with_full_offload_moves_optimizer_and_params_to_cpu_with_deepspeed_cpu_adam() -> None:
    generated = generated_config(
        config({"type": "deepspeed", "zeroStage": 3, "cpuOffload": "optimizer_and_params"}, precision="fp16"),
        4,
    )
    zero = generated["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert zero["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert zero["offload_param"] == {"device": "cpu", "pin_memory": True}
    assert generated["optimizer"]["params"]["torch_adam"] is False
    assert generated["fp16"]["enabled"] and not generated["bf16"]["enabled"]


def test_stage_defaults_to_2_and_stage_0_has_no_zero_extras() -> None:
    assert generated_config(config({"type": "deepspeed"}), 1)["zero_optimization"]["stage"] == 2
    assert generated_config(config({"type": "deepspeed", "zeroStage": 0}), 1)["zero_optimization"] == {
        "stage": 0
    }


def test_clipping_is_left_out_when_disabled() -> None:
    assert "gradient_clipping" not in generated_config(config({"type": "deepspeed"}, maxGradNorm=0.0), 1)


def test_user_overrides_merge_deeply_and_win() -> None:
    overrides = {
        "zero_optimization": {"stage": 1, "reduce_bucket_size": 50_000_000},
        "optimizer": {"params": {"betas": [0.9, 0.95]}},
        "activation_checkpointing": {"cpu": True},
    }
    merged = merged_config(config({"type": "deepspeed", "zeroStage": 2, "deepspeedConfig": overrides}), 8)
    assert merged["zero_optimization"] == {
        "stage": 1,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": 50_000_000,
    }
    assert merged["optimizer"]["params"]["betas"] == [0.9, 0.95]
    assert merged["optimizer"]["params"]["lr"] == 1e-4
    assert merged["activation_checkpointing"] == {"cpu": True}


def test_deep_merge_does_not_modify_its_inputs() -> None:
    base, override = {"a": {"b": 1, "c": [1]}}, {"a": {"b": 2}, "d": {"e": 3}}
    assert deep_merge(base, override) == {"a": {"b": 2, "c": [1]}, "d": {"e": 3}}
    assert base == {"a": {"b": 1, "c": [1]}} and override == {"a": {"b": 2}, "d": {"e": 3}}
