"""LoRA and QLoRA through Unsloth (`method.backend: unsloth`): its `FastLanguageModel` loads the base
(4-bit for QLoRA) with its patched kernels and adds the adapters; the training loop, DDP, checkpoints
and resume are the runtime's, as with peft. Unsloth needs a CUDA GPU and is not in the default
training image (its releases pin an older trl and pull xformers), so a job using it names an image
that has it."""

from __future__ import annotations

from typing import Any

import torch
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import LoraSpec, TrainingMethod

from modelfleet_train.model_loading import resolve


def load_kwargs(config: TrainingRuntimeConfig, compute_dtype: torch.dtype) -> dict[str, Any]:
    """`FastLanguageModel.from_pretrained`'s arguments for this config."""
    return {
        "model_name": resolve(config.base_model),
        "max_seq_length": config.hyperparameters.sequence_length,
        "dtype": compute_dtype,
        "load_in_4bit": config.method.type == TrainingMethod.QLORA,
        "revision": config.base_model.revision,
        "trust_remote_code": config.base_model.trust_remote_code,
    }


def peft_kwargs(config: TrainingRuntimeConfig) -> dict[str, Any]:
    """`FastLanguageModel.get_peft_model`'s arguments: the same adapters `method.lora` gives peft."""
    lora = config.method.lora or LoraSpec()
    every_linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return {
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": every_linear if lora.target_modules == ["all-linear"] else lora.target_modules,
        "bias": "none",
        # Unsloth's own offloaded checkpointing when the spec asks for gradient checkpointing
        "use_gradient_checkpointing": "unsloth" if config.hyperparameters.gradient_checkpointing else False,
        "random_state": config.hyperparameters.seed,
    }


def unsloth_model(config: TrainingRuntimeConfig, compute_dtype: torch.dtype) -> Any:
    """The base model with LoRA adapters, loaded and patched by Unsloth onto this process's GPU."""
    if not torch.cuda.is_available():
        raise RuntimeError("method.backend: unsloth needs a CUDA GPU and none is visible; use backend peft")
    try:
        from unsloth import FastLanguageModel
    except ImportError as error:
        raise RuntimeError(
            f"method.backend: unsloth is not installed in this image ({error}); set image to one with Unsloth"
        ) from error
    model, _ = FastLanguageModel.from_pretrained(**load_kwargs(config, compute_dtype))
    model.config.use_cache = False
    return FastLanguageModel.get_peft_model(model, **peft_kwargs(config))
