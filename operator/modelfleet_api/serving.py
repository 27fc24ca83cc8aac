"""The serving engine settings a ModelDeployment holds and the launcher (`modelfleet-serve`) reads.

The quantization support table below is the one place that says which engine accepts which
quantization: the CRD's CEL rule on ``EngineSpec`` is generated from it, and the launcher's
validation uses it, so a spec the API server admits is one the launcher can start.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

import yaml
from pydantic import Field, model_validator

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.contract import METRICS_PORT, MODEL_CACHE_DIR, SERVE_PORT
from modelfleet_api.training import ModelSource


class EngineType(StrEnum):
    VLLM = "vllm"
    TGI = "tgi"
    SGLANG = "sglang"
    LMDEPLOY = "lmdeploy"
    TRITON_TRTLLM = "triton-trtllm"
    TRANSFORMERS = "transformers"
    """`transformers serve`: slow, but runs on CPU; for development and tests."""


GPU_ONLY_ENGINES: frozenset[EngineType] = frozenset(set(EngineType) - {EngineType.TRANSFORMERS})
"""Engines that need an NVIDIA GPU to start."""


class Quantization(StrEnum):
    AWQ = "awq"
    GPTQ = "gptq"
    FP8 = "fp8"
    BITSANDBYTES = "bitsandbytes"


QUANTIZATION_SUPPORT: dict[EngineType, frozenset[Quantization]] = {
    EngineType.VLLM: frozenset(Quantization),
    EngineType.TGI: frozenset(Quantization),
    EngineType.SGLANG: frozenset(Quantization),
    # LMDeploy's TurboMind reads pre-quantized AWQ/GPTQ 4-bit weights (--model-format).
    EngineType.LMDEPLOY: frozenset({Quantization.AWQ, Quantization.GPTQ}),
    # TensorRT-LLM quantizes when its engine is built, before Triton starts: nothing to choose here.
    EngineType.TRITON_TRTLLM: frozenset(),
    # `transformers serve --quantization bnb-4bit` (bitsandbytes needs a GPU).
    EngineType.TRANSFORMERS: frozenset({Quantization.BITSANDBYTES}),
}
"""Which quantizations each engine accepts."""


def quantization_cel_rule() -> CelRule:
    """The CEL rule on ``EngineSpec`` that enforces ``QUANTIZATION_SUPPORT`` in the API server."""
    clauses = []
    for engine, supported in QUANTIZATION_SUPPORT.items():
        allowed = ", ".join(f"'{q}'" for q in sorted(supported))
        clauses.append(f"(self.type == '{engine}' && self.settings.quantization in [{allowed}])")
    rule = "!has(self.settings) || !has(self.settings.quantization) || " + " || ".join(clauses)
    table = "; ".join(f"{e}: {', '.join(sorted(q)) or 'none'}" for e, q in QUANTIZATION_SUPPORT.items())
    return CelRule(
        rule=rule,
        message=f"settings.quantization is not supported by this engine ({table})",
        field_path=".settings.quantization",
    )


class Dtype(StrEnum):
    AUTO = "auto"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FLOAT32 = "float32"


class LoraAdapter(ApiModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Model name clients use to select this adapter (`model` field of a request)."""

    uri: str = Field(min_length=1, max_length=1024)
    """Where the adapter weights are: a Hugging Face id, a blob URI, a PVC path or a local directory."""


class EngineSettings(ApiModel):
    """Engine-neutral settings; each is translated into the engine's own flag, unset ones are left to
    the engine's default."""

    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs the model is sharded over (one pod); must equal the pod's GPU count."""

    max_model_length: int | None = Field(default=None, ge=16, le=1048576)
    """Longest sequence (prompt + output tokens) the engine accepts; bounds KV-cache memory."""

    dtype: Dtype = Dtype.AUTO
    """Weight and activation dtype; `auto` takes it from the checkpoint."""

    quantization: Quantization | None = None
    """Quantized weights to load (the checkpoint must be quantized that way, except `fp8` and
    `bitsandbytes`, which quantize on load). Which engines support which: see the CRD validation."""

    gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    """Fraction of GPU memory the engine may use for weights and KV cache (vLLM, SGLang, LMDeploy)."""

    max_num_seqs: int | None = Field(default=None, ge=1, le=65536)
    """Most sequences decoded together in one batch."""

    prefix_caching: bool | None = None
    """Reuse the KV cache of shared prompt prefixes; unset keeps the engine's default."""

    lora_adapters: list[LoraAdapter] = Field(default_factory=list, max_length=32)
    """LoRA adapters served next to the base model (vLLM, SGLang, LMDeploy)."""

    extra_args: list[str] = Field(default_factory=list, max_length=64)
    """Arguments appended verbatim to the engine's command line, after the generated ones."""


class EngineSpec(ApiModel):
    cel_rules = (quantization_cel_rule(),)

    type: EngineType = EngineType.VLLM
    """Inference engine: `vllm`, `tgi`, `sglang`, `lmdeploy`, `triton-trtllm` (the model URI is a
    Triton model repository with built TensorRT-LLM engines) or `transformers` (CPU, development)."""

    settings: EngineSettings = Field(default_factory=EngineSettings)
    """Engine-neutral settings."""

    @model_validator(mode="after")
    def _quantization_supported(self) -> Self:
        quantization = self.settings.quantization
        if quantization is not None and quantization not in QUANTIZATION_SUPPORT[self.type]:
            supported = ", ".join(sorted(QUANTIZATION_SUPPORT[self.type])) or "none"
            raise ValueError(
                f"settings.quantization: {self.type} does not support {quantization} (supported: {supported})"
            )
        return self


class ServingRuntimeConfig(ApiModel):
    """Everything the launcher needs, rendered by the operator from the ModelDeployment."""

    model: ModelSource
    """The model to serve."""

    served_model_name: str = Field(min_length=1, max_length=256)
    """Name clients put in the `model` field of requests."""

    engine: EngineSpec = Field(default_factory=EngineSpec)
    """Engine and its settings."""

    port: int = Field(default=SERVE_PORT, ge=1, le=65535)
    """Port the engine's HTTP API listens on."""

    host: str = "0.0.0.0"
    """Address the engine listens on."""

    metrics_port: int = Field(default=METRICS_PORT, ge=1, le=65535)
    """Port of the launcher's own Prometheus endpoint (model download, engine restarts and state);
    the engine's request metrics stay on the engine's `/metrics`."""

    api_key_env: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of an environment variable (from a Secret) holding the API key clients must send; unset
    serves without authentication."""

    cache_dir: str = Field(default=MODEL_CACHE_DIR, min_length=1, max_length=1024)
    """Directory the model is downloaded to and read from."""

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_wire(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> ServingRuntimeConfig:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def load(cls, path: str | Path) -> ServingRuntimeConfig:
        return cls.from_yaml(Path(path).read_text())
