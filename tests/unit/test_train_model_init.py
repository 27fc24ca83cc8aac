"""Which path each rank's initial weights take, per strategy, method and rank (model_init)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from modelfleet_train.config import parse_config
from modelfleet_train.model_init import InitPath, init_path

pytestmark = pytest.mark.unit

DEEPSPEED_3 = {"type": "deepspeed", "zeroStage": 3}
FULL_DPO = {"type": "dpo"}
LORA_DPO = {"type": "dpo", "lora": {"r": 8}}


def config(strategy: dict[str, Any], method: dict[str, Any], load_in_4bit: bool = False) -> Any:
    return parse_config(
        yaml.safe_dump(
            {
                "job": {"name": "j", "namespace": "n"},
                "model": {"uri": "/m", "loadIn4bit": load_in_4bit},
                "dataset": {"uri": "/d.jsonl"},
                "method": method,
                "strategy": strategy,
                "output": {"uri": "/out"},
                "topology": {"nodes": 4, "gpusPerNode": 8},
            }
        )
    )


@pytest.mark.parametrize(
    ("strategy", "method", "rank", "expected"),
    [
        ({"type": "fsdp"}, {"type": "full"}, 0, InitPath.RANK0_WEIGHTS),
        ({"type": "fsdp"}, {"type": "full"}, 1, InitPath.META),
        ({"type": "fsdp"}, {"type": "full"}, 31, InitPath.META),
        ({"type": "fsdp"}, {"type": "lora"}, 9, InitPath.META),
        ({"type": "fsdp"}, FULL_DPO, 3, InitPath.META),
        ({"type": "fsdp"}, {"type": "qlora"}, 1, InitPath.QUANTIZED),
        (DEEPSPEED_3, {"type": "full"}, 0, InitPath.ZERO3_PARTITIONED),
        (DEEPSPEED_3, {"type": "full"}, 5, InitPath.ZERO3_PARTITIONED),
        (DEEPSPEED_3, {"type": "lora"}, 5, InitPath.ZERO3_PARTITIONED),
        (DEEPSPEED_3, LORA_DPO, 5, InitPath.ZERO3_PARTITIONED),
        (DEEPSPEED_3, FULL_DPO, 5, InitPath.PRETRAINED),  # its reference is a deep copy of the policy
        (DEEPSPEED_3, {"type": "qlora"}, 0, InitPath.QUANTIZED),
        ({"type": "deepspeed", "zeroStage": 2}, {"type": "full"}, 1, InitPath.PRETRAINED),
        ({"type": "deepspeed"}, {"type": "full"}, 1, InitPath.PRETRAINED),  # stage 2 by default
        ({"type": "ddp"}, {"type": "full"}, 1, InitPath.PRETRAINED),
        ({"type": "ddp"}, {"type": "lora"}, 0, InitPath.PRETRAINED),
    ],
)
def test_each_rank_takes_the_path_its_strategy_and_method_allow(
    strategy: dict[str, Any], method: dict[str, Any], rank: int, expected: InitPath
) -> None:
    assert init_path(config(strategy, method), rank) == expected


def test_a_stage_set_in_the_users_deepspeed_config_decides() -> None:
    overridden = {"type": "deepspeed", "zeroStage": 2, "deepspeedConfig": {"zero_optimization": {"stage": 3}}}
    assert init_path(config(overridden, {"type": "full"}), 1) == InitPath.ZERO3_PARTITIONED


def test_a_4bit_base_loads_quantized_whatever_the_method() -> None:
    assert init_path(config({"type": "fsdp"}, {"type": "lora"}, load_in_4bit=True), 1) == InitPath.QUANTIZED


def test_only_the_fsdp_paths_fill_shards_from_rank0() -> None:
    assert {p for p in InitPath if p.broadcasts_from_rank0} == {InitPath.RANK0_WEIGHTS, InitPath.META}
