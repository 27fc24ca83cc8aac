"""LoRA adapters with peft."""

from __future__ import annotations

from typing import Any

from modelfleet_api.training import LoraSpec, TrainingMethod


def lora_config(spec: LoraSpec, method: TrainingMethod) -> Any:
    """peft's LoRA config; a reward model's task is sequence classification, so peft trains (and saves)
    its score head in full beside the adapters."""
    from peft import LoraConfig

    targets: list[str] | str = "all-linear" if spec.target_modules == ["all-linear"] else spec.target_modules
    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=targets,
        task_type="SEQ_CLS" if method == TrainingMethod.REWARD else "CAUSAL_LM",
    )


def apply_lora(model: Any, spec: LoraSpec, method: TrainingMethod) -> Any:
    """Freeze the base and add trainable low-rank adapters on the target modules."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(spec, method))
