"""LoRA adapters with peft."""

from __future__ import annotations

from typing import Any

from modelfleet_api.training import LoraSpec


def lora_config(spec: LoraSpec) -> Any:
    from peft import LoraConfig

    targets: list[str] | str = "all-linear" if spec.target_modules == ["all-linear"] else spec.target_modules
    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def apply_lora(model: Any, spec: LoraSpec) -> Any:
    """Freeze the base and add trainable low-rank adapters on the target modules."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(spec))
