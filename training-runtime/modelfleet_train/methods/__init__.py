"""Training methods: how the model is prepared (adapters, quantization) and what loss it minimises."""

from __future__ import annotations

import copy
from typing import Any

from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import DpoSpec, LoraSpec, TrainingMethod

from modelfleet_train.methods.causal_lm import CausalLmObjective
from modelfleet_train.methods.dpo import DpoObjective
from modelfleet_train.methods.lora import apply_lora
from modelfleet_train.methods.objective import Objective
from modelfleet_train.methods.qlora import prepare_quantized
from modelfleet_train.methods.reward import RewardObjective


def uses_adapters(config: TrainingRuntimeConfig) -> bool:
    return config.method.trains_adapters


def quantized(config: TrainingRuntimeConfig) -> bool:
    """QLoRA, or another method over a base loaded in 4-bit."""
    return config.method.type == TrainingMethod.QLORA or config.base_model.load_in_4bit


def prepare_model(model: Any, config: TrainingRuntimeConfig) -> Any:
    """Gradient checkpointing, then QLoRA's k-bit preparation and/or LoRA adapters as the method asks."""
    if config.hyperparameters.gradient_checkpointing:
        # non-reentrant checkpointing works with frozen bases (LoRA), FSDP2 and DeepSpeed alike
        # transformers 5 renamed it; 4.x only has gradient_checkpointing_enable
        enable = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )
        enable({"use_reentrant": False})
    if quantized(config):
        model = prepare_quantized(model, config.hyperparameters.gradient_checkpointing)
    if uses_adapters(config):
        model = apply_lora(model, config.method.lora or LoraSpec(), config.method.type)
    return model


def frozen_reference(model: Any, config: TrainingRuntimeConfig) -> Any | None:
    """The DPO reference for full-model DPO: a frozen copy of the starting weights (None otherwise)."""
    if config.method.type != TrainingMethod.DPO or uses_adapters(config):
        return None
    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


def build_objective(config: TrainingRuntimeConfig, reference: Any | None, pad_token_id: int) -> Objective:
    """The method's loss; `pad_token_id` is what the batches are padded with."""
    if config.method.type == TrainingMethod.DPO:
        return DpoObjective(config.method.dpo or DpoSpec(), reference)
    if config.method.type == TrainingMethod.REWARD:
        return RewardObjective(pad_token_id)
    return CausalLmObjective()
