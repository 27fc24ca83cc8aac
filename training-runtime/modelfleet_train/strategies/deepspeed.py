"""DeepSpeed ZeRO 0-3 with optional CPU offload.

The DeepSpeed config is generated from the spec (batch sizes, precision, ZeRO stage, offload,
clipping, AdamW), the user's `strategy.deepspeedConfig` is deep-merged over it (theirs win), and
rank 0 logs the merged result so what ran is on record.
"""

from __future__ import annotations

import copy
import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import CpuOffload, Precision, StrategyType

from modelfleet_train.distributed import DistContext
from modelfleet_train.optim import ADAM_BETAS, ADAM_EPS, build_scheduler
from modelfleet_train.strategies import Strategy

log = logging.getLogger(__name__)

CHECKPOINT_TAG = "state"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in: nested dicts merge key by key, anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def generated_config(config: TrainingRuntimeConfig, world_size: int) -> dict[str, Any]:
    hp, strategy = config.hyperparameters, config.strategy
    stage = 2 if strategy.zero_stage is None else strategy.zero_stage
    zero: dict[str, Any] = {"stage": stage}
    if stage >= 2:
        zero.update(overlap_comm=True, contiguous_gradients=True)
    if stage == 3:
        # consolidate full weights on save so the exported model is a normal transformers checkpoint
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    offload = strategy.cpu_offload
    if offload != CpuOffload.NONE:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if offload == CpuOffload.OPTIMIZER_AND_PARAMS:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    generated: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": hp.per_device_batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation_steps,
        "train_batch_size": hp.per_device_batch_size * hp.gradient_accumulation_steps * world_size,
        "zero_optimization": zero,
        "bf16": {"enabled": config.precision == Precision.BF16},
        "fp16": {"enabled": config.precision == Precision.FP16, "loss_scale": 0, "initial_scale_power": 16},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": hp.learning_rate,
                "betas": list(ADAM_BETAS),
                "eps": ADAM_EPS,
                "weight_decay": hp.weight_decay,
                # offload needs DeepSpeed's CPU Adam; otherwise torch's AdamW avoids compiling fused Adam
                "torch_adam": offload == CpuOffload.NONE,
            },
        },
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if hp.max_grad_norm > 0:
        generated["gradient_clipping"] = hp.max_grad_norm
    return generated


def merged_config(config: TrainingRuntimeConfig, world_size: int) -> dict[str, Any]:
    return deep_merge(generated_config(config, world_size), config.strategy.deepspeed_config or {})


def stage_of(ds_config: dict[str, Any]) -> int:
    return int(ds_config.get("zero_optimization", {}).get("stage", 0))


def zero_stage(config: TrainingRuntimeConfig) -> int:
    """The ZeRO stage that runs: the user's `deepspeedConfig` may override the spec's (0 off deepspeed)."""
    if config.strategy.type != StrategyType.DEEPSPEED:
        return 0
    return stage_of(merged_config(config, world_size=1))


class DeepSpeedStrategy(Strategy):
    def __init__(self, config: TrainingRuntimeConfig, ctx: DistContext) -> None:
        self.config, self.ctx = config, ctx
        self.ds_config = merged_config(config, ctx.world_size)
        self.stage = stage_of(self.ds_config)
        self._loading_config = self._partitioned_loading()

    def _partitioned_loading(self) -> Any:
        """Under ZeRO-3, transformers' `from_pretrained` loads inside `deepspeed.zero.Init` (each
        parameter partitioned as it is read) while an `HfDeepSpeedConfig` lives: it holds the same
        config `deepspeed.initialize` gets, and the strategy keeps it alive (transformers keeps only
        a weak reference)."""
        from modelfleet_train.model_init import InitPath, init_path

        if init_path(self.config, self.ctx.rank) != InitPath.ZERO3_PARTITIONED:
            return None
        import deepspeed
        from transformers.integrations.deepspeed import HfDeepSpeedConfig

        # zero.Init reads the world size from deepspeed's comm layer (else 1, failing its batch-size
        # check): join it to the process group now rather than in deepspeed.initialize
        deepspeed.init_distributed()
        return HfDeepSpeedConfig(copy.deepcopy(self.ds_config))

    def setup(self, model: torch.nn.Module, total_steps: int) -> None:
        import deepspeed

        if self.ctx.is_main:
            log.info("deepspeed config (generated, user overrides merged): %s", json.dumps(self.ds_config))
        hp = self.config.hyperparameters
        self.model, _, _, self.scheduler = deepspeed.initialize(
            model=model,
            model_parameters=[p for p in model.parameters() if p.requires_grad],
            config=copy.deepcopy(self.ds_config),
            lr_scheduler=lambda optimizer: build_scheduler(optimizer, hp, total_steps),
        )

    def forward_context(self) -> Any:
        return nullcontext()

    def backward(self, loss: torch.Tensor, last_micro_batch: bool) -> None:
        # the engine scales by 1/gradient_accumulation_steps and defers the reduction itself;
        # step() must be called after every micro-batch, it only updates at the boundary
        self.model.backward(loss)
        if not last_micro_batch:
            self.model.step()

    def optimizer_step(self) -> float | None:
        self.model.step()
        norm = self.model.get_global_grad_norm()
        return None if norm is None else float(norm)

    def learning_rate(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, directory: Path) -> None:
        self.model.save_checkpoint(
            str(directory), tag=CHECKPOINT_TAG, save_latest=False, exclude_frozen_parameters=True
        )

    def load(self, directory: Path) -> None:
        path, _ = self.model.load_checkpoint(
            str(directory),
            tag=CHECKPOINT_TAG,
            load_optimizer_states=True,
            load_lr_scheduler_states=True,
            load_module_strict=False,
        )
        if path is None:
            raise RuntimeError(f"deepspeed found no checkpoint in {directory}")

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        if self.stage == 3:
            state = self.model._zero3_consolidated_16bit_state_dict()
        else:
            state = self.model.module.state_dict() if self.ctx.is_main else {}
        return {k: v.detach().cpu() for k, v in (state or {}).items()} if self.ctx.is_main else {}

    def unwrapped(self) -> Any:
        return self.model.module
