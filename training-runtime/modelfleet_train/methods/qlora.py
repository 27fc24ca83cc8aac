"""QLoRA: LoRA over a base loaded in 4-bit NF4 by bitsandbytes (model_loading.quantization_config)."""

from __future__ import annotations

from typing import Any


def prepare_quantized(model: Any, gradient_checkpointing: bool) -> Any:
    """peft's preparation of a k-bit model: fp32 norms/head, input grads for checkpointing."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
