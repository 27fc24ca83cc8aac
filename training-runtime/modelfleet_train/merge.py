"""``output.mergeAdapter``: the trained LoRA adapter merged into its base model, written as a full model.

Run by rank 0 after the adapter is saved. The base is loaded again unquantized (a QLoRA base trained in
4-bit is merged into its original weights, the only way to write a plain checkpoint an engine without
LoRA support can load), the adapter applied with peft, and ``merge_and_unload`` folds the low-rank
updates into the weights; the result is saved with the tokenizer, in the base checkpoint's dtype.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import ModelSource

from modelfleet_train.model_loading import auto_class, model_config, resolve

log = logging.getLogger(__name__)


def merged_model(config: TrainingRuntimeConfig, adapter_dir: Path, tokenizer: Any) -> Any:
    """``adapter_dir``'s adapter merged into the job's base model (in the base checkpoint's dtype); a
    reward model's base gets its one-score head, which the adapter's checkpoint fills."""
    from peft import PeftModel

    source = config.base_model
    base = auto_class(config.method.type).from_pretrained(
        resolve(ModelSource(uri=source.uri, revision=source.revision)),
        revision=source.revision,
        trust_remote_code=source.trust_remote_code,
        config=model_config(source, tokenizer, config.method.type),
        dtype="auto",
    )
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()


def merge_adapter(config: TrainingRuntimeConfig, adapter_dir: Path, target: Path, tokenizer: Any) -> None:
    """Write ``adapter_dir``'s adapter merged into the job's base model to ``target``."""
    source = config.base_model
    merged = merged_model(config, adapter_dir, tokenizer)
    target.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(target)
    tokenizer.save_pretrained(target)
    log.info("merged the adapter into %s and saved the model to %s", source.uri, target)
