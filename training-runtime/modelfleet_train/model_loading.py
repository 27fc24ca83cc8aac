"""Loading the tokenizer and the model (a causal LM, or for a reward model its sequence-classification
variant with a one-score head) from a local/PVC path, Azure Blob or the Hugging Face hub."""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from modelfleet_api import contract
from modelfleet_api.training import ModelSource, TrainingMethod, TrainingModelSource

from modelfleet_train import storage
from modelfleet_train.model_init import InitPath
from modelfleet_train.node_cache import NodeCache

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where blob downloads are cached: the cache volume the operator mounts (the node's cache
    directory, or the pod's own), else ~/.cache."""
    return Path(os.environ.get(contract.ENV_CACHE_DIR) or Path.home() / ".cache" / "modelfleet" / "runtime")


def resolve(source: ModelSource) -> str:
    """A local directory or a hub id that `from_pretrained` can read."""
    if storage.is_blob_uri(source.uri):
        location = storage.blob_location(source.uri)
        cache = NodeCache.from_env(cache_root())
        return str(cache.fill("models", source.uri, lambda target: storage.download_prefix(location, target)))
    if storage.is_local_uri(source.uri):
        path = storage.local_path(source.uri)
        if not path.exists():
            raise FileNotFoundError(f"model.uri: {path} does not exist")
        return str(path)
    return source.uri


def tokenizer_source(source: TrainingModelSource) -> ModelSource:
    """Where the tokenizer is read from: `tokenizerUri` when set, else the model's own."""
    if source.tokenizer_uri is None:
        return source
    return ModelSource(uri=source.tokenizer_uri, trust_remote_code=source.trust_remote_code)


def load_tokenizer(source: TrainingModelSource) -> Any:
    from transformers import AutoTokenizer

    origin = tokenizer_source(source)
    tokenizer = AutoTokenizer.from_pretrained(
        resolve(origin), revision=origin.revision, trust_remote_code=origin.trust_remote_code
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(compute_dtype: torch.dtype) -> Any:
    """QLoRA's 4-bit NF4 base weights with double quantization, computing in `compute_dtype`."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def auto_class(method: TrainingMethod) -> Any:
    """transformers' auto class of the model a method trains: a reward model scores a sequence with one
    label of a sequence-classification head; every other method trains a causal LM."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForSequenceClassification if method == TrainingMethod.REWARD else AutoModelForCausalLM


def model_config(source: TrainingModelSource, tokenizer: Any, method: TrainingMethod) -> Any:
    """The architecture to build: the checkpoint's config; from scratch, with `configOverrides` applied
    and the vocabulary and special token ids of the tokenizer the run uses. A reward model gets one
    label, and the tokenizer's padding token, by which it finds the last real token of a sequence."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        resolve(source), revision=source.revision, trust_remote_code=source.trust_remote_code
    )
    if method == TrainingMethod.REWARD:
        config.num_labels = 1
        config.pad_token_id = tokenizer.pad_token_id
    if source.from_scratch:
        for key, value in (source.config_overrides or {}).items():
            if not hasattr(config, key):
                raise ValueError(f"model.configOverrides: {type(config).__name__} has no field {key!r}")
            setattr(config, key, value)
        config.vocab_size = len(tokenizer)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(config, name, getattr(tokenizer, name))
    return config


def load_model(
    source: TrainingModelSource,
    method: TrainingMethod,
    compute_dtype: torch.dtype,
    device: torch.device,
    path: InitPath,
    tokenizer: Any,
) -> Any:
    """The model in fp32 master weights (mixed precision casts on the fly), or 4-bit for QLoRA;
    only its structure, on the meta device, when the weights come from rank 0 (`InitPath.META`);
    freshly initialised from its config (seeded) with `fromScratch`. A reward model's score head is
    new (seeded) unless the checkpoint is a reward model already."""
    if path == InitPath.QUANTIZED and device.type != "cuda":
        raise RuntimeError("model.loadIn4bit: 4-bit loading with bitsandbytes needs a CUDA GPU")
    model_class = auto_class(method)
    config = model_config(source, tokenizer, method)
    kwargs: dict[str, Any] = {"revision": source.revision, "trust_remote_code": source.trust_remote_code}
    if path == InitPath.META or source.from_scratch:
        with torch.device("meta") if path == InitPath.META else nullcontext():
            model = model_class.from_config(
                config, dtype=torch.float32, trust_remote_code=source.trust_remote_code
            )
    else:
        if path == InitPath.QUANTIZED:
            kwargs.update(
                quantization_config=quantization_config(compute_dtype),
                device_map={"": device.index},
                dtype=compute_dtype,
            )
        else:
            kwargs["dtype"] = torch.float32
        model = model_class.from_pretrained(resolve(source), config=config, **kwargs)
    model.config.use_cache = False
    return model
