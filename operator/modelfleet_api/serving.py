"""The serving engine settings a ModelDeployment holds and the launcher (`modelfleet-serve`) reads.

The support table below (``ENGINE_SUPPORT``) is the one place that says which engine accepts which
setting: the CRD's CEL rules on ``EngineSpec`` and ``ModelDeploymentSpec`` are generated from it, and
the models' validators and the engine command builders (``modelfleet_api.engines``) use it, so a spec
the API server admits is one the launcher can start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import Field, model_validator

from modelfleet_api.base import ApiModel, CelReason, CelRule
from modelfleet_api.contract import METRICS_PORT, MODEL_CACHE_DIR, SERVE_PORT
from modelfleet_api.storage import MODEL_SOURCES, uri_check, uri_constraints
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


class Dtype(StrEnum):
    AUTO = "auto"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FLOAT32 = "float32"


ADAPTER_URI_MAX_LENGTH = 512
"""Shorter than other URIs: up to 32 adapters per engine, in up to 16 sweep targets, each checked
against the URI grammar, must fit the API server's CEL cost budget."""


class LoraAdapter(ApiModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Model name clients use to select this adapter (`model` field of a request)."""

    uri: Annotated[str, uri_constraints(MODEL_SOURCES, ADAPTER_URI_MAX_LENGTH), uri_check(MODEL_SOURCES)]
    """Where the adapter weights are: a Hugging Face id, a blob URI, a PVC path or a local directory."""


class EngineSettings(ApiModel):
    """Engine-neutral settings; each is translated into the engine's own flag, unset ones are left to
    the engine's default."""

    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs the model is sharded over, inside one pod: at most the pod's GPUs (`resources.gpusPerReplica`),
    usually equal to them (GPUs beyond it stay idle)."""

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

    extra_args: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=64)
    """Arguments appended verbatim to the engine's command line, after the generated ones."""


@dataclass(frozen=True, kw_only=True)
class EngineSupport:
    """What one engine can do with the engine-neutral settings.

    ``ENGINE_SUPPORT`` is the one place that says it: the CRD's CEL rules are generated from it (the
    API server refuses what an engine cannot do, naming the field), ``EngineSpec``'s validator checks
    it (so the operator and the launcher refuse a config stored before a rule existed), and the engine
    command builders (``modelfleet_api.engines``) only ever see settings it allows.
    """

    quantizations: frozenset[Quantization]
    """Quantizations the engine loads."""
    dtypes: frozenset[Dtype] = frozenset(Dtype)
    """Dtypes the engine computes in (`auto`, the checkpoint's, is always among them)."""
    unsupported_settings: frozenset[str] = frozenset()
    """``EngineSettings`` fields (Python names) the engine has no equivalent for: anything but the
    default is refused rather than silently ignored."""
    api_key: bool = True
    """Whether the engine can require an API key (`apiKeySecret`)."""
    lora_with_quantization: bool = True
    """Whether LoRA adapters can be served over quantized weights."""
    served_model_name_pattern: str | None = None
    """A regular expression (the same in RE2 and Python) the served model name must match, if any."""


SERVED_NAME_AS_RELATIVE_PATH = r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$"
"""`transformers serve` answers only requests naming the path it was started with, so the served name
is that path, relative to a directory of links: segments of letters, digits, `.`, `_` and `-` joined by
`/`, none starting with `.` (so no `..`), and no `@` or `:` (it would read a revision)."""

_FP16_AND_BF16 = frozenset({Dtype.AUTO, Dtype.BFLOAT16, Dtype.FLOAT16})

ENGINE_SUPPORT: dict[EngineType, EngineSupport] = {
    EngineType.VLLM: EngineSupport(quantizations=frozenset(Quantization)),
    EngineType.TGI: EngineSupport(quantizations=frozenset(Quantization), dtypes=_FP16_AND_BF16),
    EngineType.SGLANG: EngineSupport(quantizations=frozenset(Quantization)),
    # LMDeploy's TurboMind reads pre-quantized AWQ/GPTQ 4-bit weights (--model-format); its PyTorch
    # backend, which serves LoRA adapters, reads neither.
    EngineType.LMDEPLOY: EngineSupport(
        quantizations=frozenset({Quantization.AWQ, Quantization.GPTQ}),
        dtypes=_FP16_AND_BF16,
        lora_with_quantization=False,
    ),
    # TensorRT-LLM fixes precision, quantization, batch size and sequence length when its engines are
    # built, before Triton starts: set them there. Triton has no API keys.
    EngineType.TRITON_TRTLLM: EngineSupport(
        quantizations=frozenset(),
        dtypes=frozenset({Dtype.AUTO}),
        unsupported_settings=frozenset(
            {"max_model_length", "gpu_memory_utilization", "max_num_seqs", "prefix_caching", "lora_adapters"}
        ),
        api_key=False,
    ),
    # `transformers serve --quantization bnb-4bit` (bitsandbytes needs a GPU); one process, one device.
    EngineType.TRANSFORMERS: EngineSupport(
        quantizations=frozenset({Quantization.BITSANDBYTES}),
        unsupported_settings=frozenset(
            {
                "tensor_parallel_size",
                "max_model_length",
                "gpu_memory_utilization",
                "max_num_seqs",
                "prefix_caching",
                "lora_adapters",
            }
        ),
        api_key=False,
        served_model_name_pattern=SERVED_NAME_AS_RELATIVE_PATH,
    ),
}
"""What each engine supports; see ``EngineSupport``."""

QUANTIZATION_SUPPORT: dict[EngineType, frozenset[Quantization]] = {
    engine: support.quantizations for engine, support in ENGINE_SUPPORT.items()
}
"""Which quantizations each engine accepts."""


def settings_field(name: str) -> str:
    """The wire path of an engine setting, for messages (`engine.settings.maxModelLength`)."""
    return f"engine.settings.{settings_alias(name)}"


def settings_alias(name: str) -> str:
    """The wire name of an ``EngineSettings`` field."""
    return EngineSettings.model_fields[name].alias or name


def _engines_without(predicate: Callable[[EngineSupport], bool]) -> list[EngineType]:
    return [engine for engine, support in ENGINE_SUPPORT.items() if not predicate(support)]


def cel_list(values: Iterable[str]) -> str:
    """A CEL list literal of strings."""
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def _default(name: str) -> Any:
    return EngineSettings.model_fields[name].get_default(call_default_factory=True)


def _unset_cel(name: str, settings: str = "self.settings") -> str:
    """CEL that holds when setting ``name`` of ``settings`` (a CEL path) is at its default."""
    wire, default = f"{settings}.{settings_alias(name)}", _default(name)
    if default is None:
        return f"!has({wire})"
    if isinstance(default, list):
        return f"(!has({wire}) || size({wire}) == 0)"
    return f"(!has({wire}) || {wire} == {json.dumps(default)})"


def _leave_default(name: str) -> str:
    default = _default(name)
    if default is None:
        return "leave it unset"
    return "leave it empty" if isinstance(default, list) else f"leave it at {json.dumps(default)}"


def _restricted_dtypes() -> dict[EngineType, frozenset[Dtype]]:
    return {e: s.dtypes for e, s in ENGINE_SUPPORT.items() if s.dtypes != frozenset(Dtype)}


def quantization_supported_cel(engine: str, quantization: str) -> str:
    """CEL: the engine (a CEL string expression) loads the quantization (likewise)."""
    return (
        "("
        + " || ".join(
            f"({engine} == '{e}' && {quantization} in {cel_list(s.quantizations)})"
            for e, s in ENGINE_SUPPORT.items()
            if s.quantizations
        )
        + ")"
    )


QUANTIZATION_TABLE = "; ".join(
    f"{e}: {', '.join(sorted(s.quantizations)) or 'none'}" for e, s in ENGINE_SUPPORT.items()
)


@dataclass(frozen=True)
class SupportCheck:
    """One rule of ``ENGINE_SUPPORT`` over an engine and its settings, as CEL."""

    setting: str
    """The ``EngineSettings`` field (Python name) it is about."""
    condition: Callable[[str, str], str]
    """(engine CEL expression, settings CEL path) -> CEL that holds when the settings are supported."""
    message: str
    """What is allowed, after "settings.<field>"."""
    reason: CelReason = "FieldValueInvalid"


def support_checks() -> list[SupportCheck]:
    """Every rule of ``ENGINE_SUPPORT`` on the settings, for ``EngineSpec`` and for sweep axes alike."""
    dtype_table = "; ".join(f"{e}: {', '.join(sorted(d))}" for e, d in _restricted_dtypes().items())
    checks = [
        SupportCheck(
            "quantization",
            lambda e, s: f"!has({s}.quantization) || {quantization_supported_cel(e, f'{s}.quantization')}",
            f"is not supported by this engine ({QUANTIZATION_TABLE})",
        ),
        SupportCheck(
            "dtype",
            lambda e, s: (
                f"!has({s}.dtype) || ("
                + " && ".join(
                    f"({e} != '{engine}' || {s}.dtype in {cel_list(allowed)})"
                    for engine, allowed in _restricted_dtypes().items()
                )
                + ")"
            ),
            f"is not supported by this engine ({dtype_table}; the others: any)",
        ),
    ]
    for name in sorted({n for s in ENGINE_SUPPORT.values() for n in s.unsupported_settings}):
        checks.append(_unsupported_check(name))
    no_lora = _engines_without(lambda s: s.lora_with_quantization)
    checks.append(
        SupportCheck(
            "lora_adapters",
            lambda e, s: (
                f"!({e} in {cel_list(no_lora)}) || !has({s}.quantization) || {_unset_cel('lora_adapters', s)}"
            ),
            f"cannot go with quantization on engine {' or '.join(no_lora)}: it serves LoRA adapters on a "
            "backend that reads no quantized weights",
            "FieldValueForbidden",
        )
    )
    return checks


def _unsupported_check(name: str) -> SupportCheck:
    engines = [e for e, s in ENGINE_SUPPORT.items() if name in s.unsupported_settings]
    return SupportCheck(
        name,
        lambda e, s: f"!({e} in {cel_list(engines)}) || {_unset_cel(name, s)}",
        f"is not supported by engine {' or '.join(engines)}: {_leave_default(name)}",
        "FieldValueForbidden",
    )


def settings_support_rules() -> tuple[CelRule, ...]:
    """The CEL rules on ``EngineSpec`` that enforce ``ENGINE_SUPPORT``."""
    return tuple(
        CelRule(
            rule=f"!has(self.settings) || {check.condition('self.type', 'self.settings')}",
            message=f"settings.{settings_alias(check.setting)} {check.message}",
            field_path=f".settings.{settings_alias(check.setting)}",
            reason=check.reason,
        )
        for check in support_checks()
    )


def settings_support_problem(engine: EngineType, settings: EngineSettings) -> str | None:
    """Why ``ENGINE_SUPPORT`` refuses these settings for this engine (naming the field), or None: the
    rules of ``settings_support_rules``, in Python."""
    support = ENGINE_SUPPORT[engine]
    if settings.quantization is not None and settings.quantization not in support.quantizations:
        allowed = ", ".join(sorted(support.quantizations)) or "none"
        return (
            f"{settings_field('quantization')}: {engine} does not support {settings.quantization} "
            f"(supported: {allowed})"
        )
    if settings.dtype not in support.dtypes:
        return f"{settings_field('dtype')}: {engine} supports {', '.join(sorted(support.dtypes))} only"
    for name in sorted(support.unsupported_settings):
        if getattr(settings, name) != _default(name):
            return f"{settings_field(name)} is not supported by engine {engine}: {_leave_default(name)}"
    if settings.lora_adapters and settings.quantization is not None and not support.lora_with_quantization:
        return (
            f"{settings_field('lora_adapters')}: {engine} serves LoRA adapters on a backend that reads no "
            f"quantized weights; drop one of quantization and loraAdapters"
        )
    return None


def served_name_problem(engine: EngineType, served_model_name: str) -> str | None:
    """Why this engine cannot serve under this name (``served_model_name_pattern``), or None."""
    pattern = ENGINE_SUPPORT[engine].served_model_name_pattern
    if pattern is None or re.fullmatch(pattern, served_model_name):
        return None
    return f"servedModelName {served_model_name!r}: {SERVED_NAME_RULE.format(engine=engine)}"


SERVED_NAME_RULE = (
    "engine {engine} serves under a relative path: segments of letters, digits, '.', '_' and '-' joined "
    "by '/', none starting with '.', no '@' or ':'"
)


def deployment_support_rules(engine: str, guard: str | None = None) -> tuple[CelRule, ...]:
    """Rules on a ModelDeployment spec for what depends on the engine at ``self.<engine>`` (a wire
    path under the spec: `engine` or `canary.engine`) beyond its settings: the API key and the served
    model name. ``guard`` is a CEL condition under which that engine is in use."""
    no_key = _engines_without(lambda s: s.api_key)
    unless = "" if guard is None else f"!({guard}) || "
    rules = [
        CelRule(
            rule=f"!has(self.apiKeySecret) || {unless}!(self.{engine}.type in {cel_list(no_key)})",
            message=f"apiKeySecret is not supported by {engine}.type {' or '.join(no_key)} (no API keys)",
            field_path=".apiKeySecret",
            reason="FieldValueForbidden",
        )
    ]
    for name, support in ENGINE_SUPPORT.items():
        if support.served_model_name_pattern is None:
            continue
        rules.append(
            CelRule(
                rule=f"!has(self.servedModelName) || {unless}self.{engine}.type != '{name}' || "
                f"self.servedModelName.matches('{support.served_model_name_pattern}')",
                message=f"servedModelName: {SERVED_NAME_RULE.format(engine=name)} ({engine}.type)",
                field_path=".servedModelName",
            )
        )
    return tuple(rules)


def support_summary() -> str:
    """What each engine supports, in words, from ``ENGINE_SUPPORT`` (the description of
    ``engine.settings``, so `kubectl explain` says it)."""
    lines = []
    for engine, support in ENGINE_SUPPORT.items():
        parts = [f"quantization {', '.join(sorted(support.quantizations)) or 'none'}"]
        if support.dtypes != frozenset(Dtype):
            parts.append(f"dtype {', '.join(sorted(support.dtypes))}")
        if support.unsupported_settings:
            parts.append("no " + ", ".join(sorted(settings_alias(n) for n in support.unsupported_settings)))
        if not support.lora_with_quantization:
            parts.append("no loraAdapters with quantization")
        if not support.api_key:
            parts.append("no apiKeySecret")
        if support.served_model_name_pattern:
            parts.append("servedModelName a relative path")
        lines.append(f"{engine}: {'; '.join(parts)}.")
    return (
        "Engine-neutral settings, each translated into the engine's own flag. Not every engine supports "
        "every setting: " + " ".join(lines)
    )


class EngineSpec(ApiModel):
    cel_rules = settings_support_rules()

    type: EngineType = EngineType.VLLM
    """Inference engine: `vllm`, `tgi`, `sglang`, `lmdeploy`, `triton-trtllm` (the model URI is a
    Triton model repository with built TensorRT-LLM engines) or `transformers` (CPU, development)."""

    settings: EngineSettings = Field(default_factory=EngineSettings, description=support_summary())
    """Engine-neutral settings (the description, with what each engine supports, is generated from
    ``ENGINE_SUPPORT``)."""

    @model_validator(mode="after")
    def _supported(self) -> Self:
        problem = settings_support_problem(self.type, self.settings)
        if problem is not None:
            raise ValueError(problem)
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

    @classmethod
    def from_yaml(cls, text: str) -> ServingRuntimeConfig:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def load(cls, path: str | Path) -> ServingRuntimeConfig:
        return cls.from_yaml(Path(path).read_text())
