"""Loading and checking the runtime config before any process group or GPU is touched.

Schema rules (types, ranges, unknown keys) come from the shared pydantic models in modelfleet_api;
this module adds the rules that need the whole config or the machine (cross-field combinations,
installed packages, a GPU for 4-bit loading). Every problem names the field, in the camelCase
spelling the user wrote in the TrainingJob.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from modelfleet_api import contract
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import (
    DEEPSPEED_KEYS_OWNED_BY_SPEC,
    PREFERENCE_METHODS,
    AdapterBackend,
    CpuOffload,
    DatasetFormat,
    Launcher,
    OutputSelect,
    Precision,
    StrategyType,
    TrainingMethod,
)
from pydantic import ValidationError

from modelfleet_train.storage import StorageUriError, check_uri

ADAPTER_METHODS = {TrainingMethod.LORA, TrainingMethod.QLORA}

_FORMAT_SUFFIXES = {
    ".jsonl": DatasetFormat.JSONL,
    ".parquet": DatasetFormat.PARQUET,
    ".arrow": DatasetFormat.ARROW,
}


class ConfigError(ValueError):
    """The config cannot run; the message lists every problem, each naming its field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid training config:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Machine:
    """What the checks need to know about where the job will run."""

    cuda_available: bool
    world_size: int | None = None

    @classmethod
    def detect(cls) -> Machine:
        """Asks NVML, not CUDA: no CUDA context is created, so validating never touches a GPU."""
        from modelfleet_train.telemetry import gpu_names

        world = os.environ.get("WORLD_SIZE")
        return cls(cuda_available=bool(gpu_names()), world_size=int(world) if world else None)


def config_path(cli_value: str | None) -> Path:
    """The config file: --config, else env MODELFLEET_CONFIG, else the operator's mount path."""
    return Path(
        cli_value or os.environ.get(contract.ENV_CONFIG) or f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"
    )


def parse_config(text: str) -> TrainingRuntimeConfig:
    """Parse YAML into the shared model, turning pydantic's errors into field-named problems."""
    try:
        return TrainingRuntimeConfig.from_yaml(text)
    except ValidationError as error:
        raise ConfigError(
            [Problem(".".join(str(part) for part in e["loc"]), e["msg"]) for e in error.errors()]
        ) from None


def load_config(path: Path, machine: Machine) -> TrainingRuntimeConfig:
    if not path.is_file():
        raise ConfigError([Problem("--config", f"{path} does not exist")])
    config = parse_config(path.read_text())
    problems = check_config(config, machine)
    if problems:
        raise ConfigError(problems)
    return config


def check_config(config: TrainingRuntimeConfig, machine: Machine) -> list[Problem]:
    """Every cross-field and machine problem of a schema-valid config (empty when it can run)."""
    return [
        *_model_problems(config),
        *_method_problems(config, machine),
        *_tokenizer_problems(config),
        *_backend_problems(config, machine),
        *_launcher_problems(config),
        *_strategy_problems(config),
        *_precision_problems(config, machine),
        *_data_problems(config),
        *_storage_problems(config),
        *_schedule_problems(config),
        *_tracking_problems(config),
        *_evaluation_problems(config),
        *_topology_problems(config, machine),
    ]


def _model_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    tokenizer = config.method.type == TrainingMethod.TOKENIZER
    if config.model is None and not tokenizer:
        return [Problem("model", f"required: method {config.method.type} starts from a model")]
    if config.model is not None and tokenizer:
        return [
            Problem(
                "model",
                "method tokenizer trains a tokenizer from the data alone: remove model (a later job reads "
                "the tokenizer with model.tokenizerUri)",
            )
        ]
    return []


def _method_problems(config: TrainingRuntimeConfig, machine: Machine) -> list[Problem]:
    method, problems = config.method, []
    in_4bit = config.model is not None and config.model.load_in_4bit
    quantized = method.type == TrainingMethod.QLORA or in_4bit
    if method.type == TrainingMethod.QLORA and not machine.cuda_available:
        problems.append(
            Problem(
                "method.type",
                "qlora loads the base model in 4-bit with bitsandbytes, "
                "which needs a CUDA GPU; none is visible. Use lora on CPU.",
            )
        )
    elif quantized and importlib.util.find_spec("bitsandbytes") is None:
        problems.append(Problem("method.type", "4-bit loading needs the bitsandbytes package in the image"))
    if in_4bit and method.type not in ADAPTER_METHODS | set(PREFERENCE_METHODS):
        problems.append(
            Problem(
                "model.loadIn4bit", f"4-bit weights cannot be trained by {method.type}; use method.type qlora"
            )
        )
    if in_4bit and method.type in PREFERENCE_METHODS and method.lora is None:
        problems.append(
            Problem("method.lora", f"{method.type} on a 4-bit base trains adapters: set method.lora")
        )
    if method.lora is not None and method.type not in ADAPTER_METHODS | set(PREFERENCE_METHODS):
        problems.append(
            Problem("method.lora", f"only used by lora, qlora, dpo and reward, not {method.type}")
        )
    if method.dpo is not None and method.type != TrainingMethod.DPO:
        problems.append(Problem("method.dpo", f"only used by dpo, not {method.type}"))
    if method.tokenizer is not None and method.type != TrainingMethod.TOKENIZER:
        problems.append(Problem("method.tokenizer", f"only used by tokenizer, not {method.type}"))
    if config.output.merge_adapter and not method.trains_adapters:
        problems.append(
            Problem(
                "output.mergeAdapter",
                f"merges a LoRA adapter, and {method.type} trains none: "
                "use method.type lora or qlora, or dpo or reward with method.lora",
            )
        )
    if quantized and config.strategy.type != StrategyType.DDP:
        problems.append(
            Problem(
                "strategy.type",
                "4-bit (qlora) training runs with ddp; sharding quantized weights is not supported",
            )
        )
    if (
        method.type == TrainingMethod.DPO
        and method.lora is None
        and config.strategy.type == StrategyType.DEEPSPEED
        and _zero_stage(config) == 3
    ):
        problems.append(
            Problem(
                "method.lora",
                "full-model DPO under ZeRO-3 would need a sharded reference "
                "model; set method.lora (the reference is the base without adapters) "
                "or use zeroStage <= 2",
            )
        )
    return problems


def _backend_problems(config: TrainingRuntimeConfig, machine: Machine) -> list[Problem]:
    if config.method.backend != AdapterBackend.UNSLOTH:
        return []
    problems = []
    if config.method.type not in {TrainingMethod.LORA, TrainingMethod.QLORA}:
        problems.append(
            Problem("method.backend", f"unsloth trains lora and qlora adapters, not {config.method.type}")
        )
    if config.strategy.type != StrategyType.DDP:
        problems.append(
            Problem("strategy.type", "method.backend unsloth trains with ddp (one GPU per process)")
        )
    if not machine.cuda_available:
        problems.append(
            Problem("method.backend", "unsloth needs a CUDA GPU and none is visible; use backend peft on CPU")
        )
    elif importlib.util.find_spec("unsloth") is None:
        problems.append(
            Problem(
                "method.backend",
                "unsloth is not installed in this image (the default training image does not ship it: "
                "its releases pin an older trl); set image to one with Unsloth",
            )
        )
    return problems


def _launcher_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    if config.strategy.launcher == Launcher.ACCELERATE and importlib.util.find_spec("accelerate") is None:
        return [Problem("strategy.launcher", "the accelerate package is not installed in this image")]
    return []


def _zero_stage(config: TrainingRuntimeConfig) -> int:
    return 2 if config.strategy.zero_stage is None else config.strategy.zero_stage


def _strategy_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    strategy, problems = config.strategy, []
    is_deepspeed = strategy.type == StrategyType.DEEPSPEED
    if not is_deepspeed:
        for name, value, default in [
            ("zeroStage", strategy.zero_stage, None),
            ("cpuOffload", strategy.cpu_offload, CpuOffload.NONE),
            ("deepspeedConfig", strategy.deepspeed_config, None),
        ]:
            if value != default:
                problems.append(
                    Problem(f"strategy.{name}", f"only applies to deepspeed, not {strategy.type}")
                )
    if strategy.fsdp is not None and strategy.type != StrategyType.FSDP:
        problems.append(Problem("strategy.fsdp", f"only applies to fsdp, not {strategy.type}"))
    if is_deepspeed:
        stage = _zero_stage(config)
        if strategy.cpu_offload != CpuOffload.NONE and stage == 0:
            problems.append(Problem("strategy.cpuOffload", "offloading needs zeroStage 1, 2 or 3"))
        if strategy.cpu_offload == CpuOffload.OPTIMIZER_AND_PARAMS and stage != 3:
            problems.append(
                Problem(
                    "strategy.cpuOffload",
                    "optimizer_and_params offloads parameters, "
                    "which only zeroStage 3 partitions; use optimizer",
                )
            )
        for key, owner in DEEPSPEED_KEYS_OWNED_BY_SPEC.items():
            if key in (strategy.deepspeed_config or {}):
                problems.append(Problem("strategy.deepspeedConfig", f"{key} is set from {owner}"))
    return problems


def _precision_problems(config: TrainingRuntimeConfig, machine: Machine) -> list[Problem]:
    if config.precision != Precision.FP16:
        return []
    if not machine.cuda_available:
        return [Problem("precision", "fp16 needs a GPU; use bf16 or fp32 on CPU")]
    if config.strategy.type != StrategyType.DEEPSPEED:
        return [
            Problem(
                "precision",
                f"fp16 loss scaling is provided with deepspeed only; use bf16 "
                f"with {config.strategy.type} (H100 supports it)",
            )
        ]
    return []


def _data_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    dataset, problems = config.dataset, []
    suffix_format = _FORMAT_SUFFIXES.get(Path(dataset.uri).suffix)
    if suffix_format is not None and suffix_format != dataset.format:
        problems.append(
            Problem("dataset.format", f"{dataset.format} does not match {dataset.uri!r}; use {suffix_format}")
        )
    method = config.method.type
    if dataset.packing and method in PREFERENCE_METHODS:
        problems.append(
            Problem(
                "dataset.packing",
                f"{method} compares whole chosen/rejected sequences; packing is not supported",
            )
        )
    if dataset.packing and method == TrainingMethod.TOKENIZER:
        problems.append(
            Problem("dataset.packing", "method tokenizer reads the raw text; packing does not apply")
        )
    if dataset.streaming and config.hyperparameters.max_steps is None:
        problems.append(
            Problem(
                "hyperparameters.maxSteps", "a streamed data set has no length to count epochs by: set it"
            )
        )
    if dataset.streaming and config.evaluation is not None and config.evaluation.holdout_fraction is not None:
        problems.append(
            Problem(
                "evaluation.holdoutFraction",
                "picks rows of the whole data set, which streaming never loads: use evaluation.dataset",
            )
        )
    if dataset.streaming and method == TrainingMethod.TOKENIZER:
        problems.append(
            Problem("dataset.streaming", "method tokenizer reads the data set once on one worker")
        )
    if dataset.fields.messages and method in {
        TrainingMethod.PRETRAIN,
        TrainingMethod.TOKENIZER,
        *PREFERENCE_METHODS,
    }:
        problems.append(
            Problem("dataset.fields.messages", f"{config.method.type} does not read chat messages")
        )
    return problems


def _storage_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    problems = []
    evaluation = config.evaluation
    for field, uri in [
        ("output.uri", config.output.uri),
        ("checkpoint.uri", config.checkpoint.uri),
        ("dataset.uri", config.dataset.uri),
        ("model.uri", config.model.uri if config.model else None),
        ("model.tokenizerUri", config.model.tokenizer_uri if config.model else None),
        ("evaluation.dataset.uri", evaluation.dataset.uri if evaluation and evaluation.dataset else None),
        (
            "evaluation.generation.uri",
            evaluation.generation.uri if evaluation and evaluation.generation else None,
        ),
        (
            "evaluation.lmEval.tasksUri",
            evaluation.lm_eval.tasks_uri if evaluation and evaluation.lm_eval else None,
        ),
    ]:
        if uri is None:
            continue
        try:
            check_uri(uri)
        except StorageUriError as error:
            problems.append(Problem(field, str(error)))
    return problems


def _schedule_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    hp = config.hyperparameters
    if hp.max_steps is not None and hp.warmup_steps >= hp.max_steps:
        return [
            Problem(
                "hyperparameters.warmupSteps",
                f"{hp.warmup_steps} warm-up steps leave nothing of maxSteps {hp.max_steps}",
            )
        ]
    return []


def _tracking_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    tracking = config.tracking
    wanted = [
        ("tracking.mlflowUri", tracking.mlflow_uri, "mlflow"),
        ("tracking.wandb", tracking.wandb, "wandb"),
        ("tracking.comet", tracking.comet, "comet_ml"),
    ]
    return [
        Problem(field, f"the {package} package is not installed in this image")
        for field, setting, package in wanted
        if setting and importlib.util.find_spec(package) is None
    ]


def _evaluation_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    evaluation, problems = config.evaluation, []
    if config.output.select == OutputSelect.BEST:
        if evaluation is None or not evaluation.holds_out:
            problems.append(
                Problem(
                    "output.select",
                    "best picks the checkpoint with the lowest held-out loss: set evaluation.holdoutFraction "
                    "or evaluation.dataset",
                )
            )
        elif evaluation.interval_steps and config.checkpoint.interval_steps % evaluation.interval_steps:
            problems.append(
                Problem(
                    "evaluation.intervalSteps",
                    "with output.select best every checkpoint needs its held-out loss: "
                    f"checkpoint.intervalSteps {config.checkpoint.interval_steps} is not a multiple of "
                    f"{evaluation.interval_steps}",
                )
            )
    if evaluation is None:
        return problems
    if config.method.type == TrainingMethod.REWARD:
        problems += [
            Problem(field, "scores generated answers, and a reward model generates none")
            for field, setting in [
                ("evaluation.generation", evaluation.generation),
                ("evaluation.lmEval", evaluation.lm_eval),
            ]
            if setting is not None
        ]
    if evaluation.holdout_fraction is not None and evaluation.dataset is not None:
        problems.append(
            Problem(
                "evaluation.dataset", "holdoutFraction and dataset both choose the held-out data: set one"
            )
        )
    wanted = [
        ("evaluation.generation", evaluation.generation, ("sacrebleu", "rouge_score")),
        ("evaluation.lmEval", evaluation.lm_eval, ("lm_eval",)),
    ]
    problems += [
        Problem(field, f"the {package} package is not installed in this image")
        for field, setting, packages in wanted
        for package in packages
        if setting and importlib.util.find_spec(package) is None
    ]
    return problems


def _tokenizer_problems(config: TrainingRuntimeConfig) -> list[Problem]:
    """Settings of model training that a tokenizer job has no use for."""
    if config.method.type != TrainingMethod.TOKENIZER:
        return []
    strategy, tracking = config.strategy, config.tracking
    unused = [
        ("evaluation", config.evaluation is not None, "trains no model to evaluate"),
        (
            "strategy",
            strategy.zero_stage is not None
            or strategy.fsdp is not None
            or strategy.deepspeed_config is not None
            or strategy.cpu_offload != CpuOffload.NONE
            or strategy.launcher != Launcher.TORCHRUN,
            "runs one process and distributes no model",
        ),
        (
            "tracking",
            any((tracking.mlflow_uri, tracking.wandb, tracking.comet, tracking.pushgateway_url)),
            "reports no training metrics",
        ),
    ]
    return [Problem(field, f"method tokenizer {why}: remove it") for field, setting, why in unused if setting]


def _topology_problems(config: TrainingRuntimeConfig, machine: Machine) -> list[Problem]:
    expected = config.topology.nodes * config.topology.gpus_per_node
    if machine.world_size is not None and machine.world_size != expected:
        return [
            Problem(
                "topology",
                f"nodes x gpusPerNode = {expected} but {machine.world_size} processes were started",
            )
        ]
    return []
