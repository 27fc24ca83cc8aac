"""The parts of a TrainingJob's spec that the training runtime also reads.

The operator embeds these models in ``TrainingJobSpec`` and renders them, resolved, into the
runtime config (``runtime_config.TrainingRuntimeConfig``) that every worker pod mounts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.common import HttpUrl, HubTokenSecret, MlflowUri, SecretKeyRef
from modelfleet_api.storage import PATTERNS, FileUri, ModelUri, UriKind

MAX_STEPS = 10_000_000
"""Most optimizer steps a run may take (and its warm-up and checkpoint interval)."""
MAX_SEED = 2**32 - 1
"""Seeds are 32-bit (numpy's and the data order's)."""


class TrainingMethod(StrEnum):
    FULL = "full"
    LORA = "lora"
    QLORA = "qlora"
    DPO = "dpo"
    PRETRAIN = "pretrain"
    REWARD = "reward"
    TOKENIZER = "tokenizer"


PREFERENCE_METHODS = (TrainingMethod.DPO, TrainingMethod.REWARD)
"""Methods that train on preference pairs (prompt, chosen, rejected)."""


class StrategyType(StrEnum):
    DEEPSPEED = "deepspeed"
    FSDP = "fsdp"
    DDP = "ddp"


class Precision(StrEnum):
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


class DatasetFormat(StrEnum):
    JSONL = "jsonl"
    PARQUET = "parquet"
    ARROW = "arrow"
    HF = "hf"


class LrSchedule(StrEnum):
    COSINE = "cosine"
    LINEAR = "linear"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"


class Launcher(StrEnum):
    TORCHRUN = "torchrun"
    ACCELERATE = "accelerate"


class AdapterBackend(StrEnum):
    PEFT = "peft"
    UNSLOTH = "unsloth"


class CpuOffload(StrEnum):
    NONE = "none"
    OPTIMIZER = "optimizer"
    OPTIMIZER_AND_PARAMS = "optimizer_and_params"


def hub_id_cel(path: str) -> str:
    """CEL that holds when the URI at ``path`` (``self.uri``) is a Hugging Face hub id."""
    return f'{path}.matches(r"{PATTERNS[UriKind.HUB]}")'


class ModelSource(ApiModel):
    uri: ModelUri
    """Where the base model comes from: a Hugging Face id (`meta-llama/Llama-3.1-8B`), an Azure Blob
    URI (`https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH` or `az://CONTAINER/PATH`), a PVC path
    (`pvc://CLAIM/PATH`) or a local directory in the image (`/models/llama`)."""

    revision: str | None = Field(default=None, max_length=256)
    """Git revision (branch, tag or commit) of a Hugging Face model; ignored for other sources."""

    load_in_4bit: bool = Field(default=False, alias="loadIn4bit")
    """Load the base weights quantized to 4-bit NF4 with bitsandbytes (required by `qlora`; GPU only)."""

    trust_remote_code: bool = False
    """Allow model code shipped with the checkpoint to run. Leave off unless you trust the source."""

    token_secret: HubTokenSecret | None = None
    """Secret key holding a Hugging Face access token, for a gated or private hub model: the pods get
    it as `HF_TOKEN` (the token never appears in the resource). For other hub downloads (adapters, a
    data set) with a model stored elsewhere, set `HF_TOKEN` in `env` from a Secret instead."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"!has(self.tokenSecret) || {hub_id_cel('self.uri')}",
            message="tokenSecret is a Hugging Face hub token: uri must be a hub id (ORG/NAME)",
            field_path=".tokenSecret",
            reason="FieldValueForbidden",
        ),
    )


class TrainingModelSource(ModelSource):
    """The model a TrainingJob starts from: its weights, or only its architecture."""

    from_scratch: bool = False
    """Build the model from its config (`config.json` at `uri`) with freshly initialised weights
    (seeded by `hyperparameters.seed`) instead of reading its weights: pre-training from scratch. The
    vocabulary and special token ids follow the tokenizer."""

    config_overrides: dict[str, Any] | None = None
    """Fields of the model's config to change before it is built, e.g. `{num_hidden_layers: 12,
    hidden_size: 1024}` (with `fromScratch` only)."""

    tokenizer_uri: str | None = Field(default=None, min_length=1, max_length=1024)
    """Where the tokenizer comes from when it is not at `uri` (the same kinds of URI), e.g. the output of
    a TrainingJob that trained one; unset: `uri`."""

    cel_rules = (
        CelRule(
            rule=f"!has(self.tokenSecret) || {hub_id_cel('self.uri')} || "
            f"(has(self.tokenizerUri) && {hub_id_cel('self.tokenizerUri')})",
            message="tokenSecret is a Hugging Face hub token: uri or tokenizerUri must be a hub id "
            "(ORG/NAME)",
            field_path=".tokenSecret",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.fromScratch || !has(self.configOverrides)",
            message="configOverrides applies only with fromScratch: true (a checkpoint fixes its shape)",
            field_path=".configOverrides",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!(self.fromScratch && self.loadIn4bit)",
            message="a model trained from scratch has no weights to load in 4-bit",
            field_path=".loadIn4bit",
            reason="FieldValueForbidden",
        ),
    )


class DatasetFields(ApiModel):
    """Column names in the dataset; only the ones the chosen method uses are read."""

    text: str = Field(default="text", min_length=1, max_length=256)
    """Raw text column for `pretrain` and `tokenizer`."""

    prompt: str = Field(default="prompt", min_length=1, max_length=256)
    """Instruction/prompt column for instruction tuning, DPO and reward models."""

    response: str = Field(default="response", min_length=1, max_length=256)
    """Response column for instruction tuning; the loss is computed on these tokens only."""

    messages: str | None = Field(default=None, min_length=1, max_length=256)
    """Chat column (a list of `{role, content}`); when set it is used instead of prompt/response and
    rendered with the tokenizer's chat template, the loss masked to the assistant turns."""

    chosen: str = Field(default="chosen", min_length=1, max_length=256)
    """Preferred response column for DPO and reward models."""

    rejected: str = Field(default="rejected", min_length=1, max_length=256)
    """Dispreferred response column for DPO and reward models."""


DATASET_SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet", ".arrow": "arrow"}
"""File extensions that say the format (the runtime reads a file by `format`, not by its name)."""
_HUB_ID = hub_id_cel("self.uri")
_LOCAL = f'self.uri.matches(r"{PATTERNS[UriKind.LOCAL]}")'


class DatasetSource(ApiModel):
    """Where a data set is and how to read it (the training data, or a held-out set to evaluate on)."""

    cel_rules = (
        CelRule(
            rule=" && ".join(
                f"(!self.uri.endsWith('{s}') || self.format == '{f}')" for s, f in DATASET_SUFFIXES.items()
            ),
            message="format must match the file's extension ("
            + ", ".join(f"{s}: {f}" for s, f in DATASET_SUFFIXES.items())
            + ")",
            field_path=".format",
        ),
        CelRule(
            rule=f"self.format == 'hf' ? ({_HUB_ID} || {_LOCAL}) : !{_HUB_ID}",
            message="a Hugging Face dataset id (ORG/NAME) is read with format hf, and format hf reads a hub "
            "id or a dataset directory in the pod (not pvc:// or blob storage: use jsonl, parquet or arrow)",
            field_path=".format",
        ),
    )

    uri: ModelUri
    """Where the data is: a Hugging Face dataset id, a blob URI, a PVC path or a local file/directory."""

    format: DatasetFormat = DatasetFormat.JSONL
    """File format of the data: `jsonl`, `parquet`, `arrow` (a saved Dataset) or `hf` (hub dataset)."""

    split: str = Field(default="train", min_length=1, max_length=256)
    """Split to read."""


class DatasetSpec(DatasetSource):
    """The training data."""

    fields: DatasetFields = Field(default_factory=DatasetFields)
    """Column mapping."""

    packing: bool = False
    """Pack several short examples into one sequence of `sequenceLength` tokens (attention kept per
    example)."""

    streaming: bool = False
    """Read the rows as training consumes them instead of loading the whole set first: each rank opens
    only its own files (a `jsonl` or `parquet` directory of a multiple of the world size's files; else
    every rank reads the file and keeps every world-size-th row), shuffles them in a buffer of
    10,000 rows reseeded every pass, and tokenizes only those. A stream has no length, so
    `hyperparameters.maxSteps` says when training ends; a rank that reaches the end of its share
    starts a new pass over it. A resumed run reads what each rank had consumed of its current pass
    again without training on it (exact; it costs the reading and tokenizing time)."""


class LoraSpec(ApiModel):
    r: int = Field(default=16, ge=1, le=1024)
    """Rank of the low-rank update."""

    alpha: int = Field(default=32, ge=1, le=4096)
    """Scaling numerator: the update is scaled by alpha / r."""

    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Dropout on the LoRA input."""

    target_modules: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1, max_length=64
    )
    """Names of the modules that get adapters (`all-linear` targets every linear layer)."""


class DpoSpec(ApiModel):
    beta: float = Field(default=0.1, gt=0.0, le=10.0)
    """Temperature of the DPO loss: how far the policy may move from the reference model."""

    loss_type: str = Field(default="sigmoid", max_length=16, pattern="^(sigmoid|ipo|hinge)$")
    """DPO loss variant: `sigmoid` (the paper's), `ipo` or `hinge`."""


class TokenizerAlgorithm(StrEnum):
    BPE = "bpe"
    UNIGRAM = "unigram"
    WORDPIECE = "wordpiece"


SpecialToken = Annotated[str, Field(min_length=1, max_length=64)]


class SpecialTokens(ApiModel):
    """The special tokens of a trained tokenizer: they get the first ids, in this order (`pad`, `bos`,
    `eos`, `unk`, then `additional`), and are never split or merged."""

    pad: SpecialToken = "<pad>"
    """Padding token."""

    bos: SpecialToken = "<s>"
    """Beginning of a sequence: put before every document (and prompt) the runtime tokenizes."""

    eos: SpecialToken = "</s>"
    """End of a sequence: put after every document and response."""

    unk: SpecialToken = "<unk>"
    """Stands for what the vocabulary cannot spell (`unigram`, `wordpiece`; `bpe` is byte-level, spells
    every text and has none)."""

    additional: list[SpecialToken] = Field(
        default_factory=list, max_length=256, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """More tokens kept whole, e.g. the role markers of a chat template (`<|user|>`, `<|assistant|>`)."""

    cel_rules = (
        CelRule(
            rule="[self.pad, self.bos, self.eos, self.unk].all(t, !self.additional.exists(a, a == t)) && "
            "self.pad != self.bos && self.pad != self.eos && self.pad != self.unk && self.bos != self.eos "
            "&& self.bos != self.unk && self.eos != self.unk",
            message="pad, bos, eos, unk and the additional tokens must differ from each other",
            field_path=".additional",
        ),
    )


class TokenizerSpec(ApiModel):
    """A tokenizer trained on the data set's `fields.text` column with the Hugging Face `tokenizers`
    library, written as a `transformers` tokenizer (`AutoTokenizer.from_pretrained` reads it)."""

    algorithm: TokenizerAlgorithm = TokenizerAlgorithm.BPE
    """`bpe`: byte-level BPE (GPT-2, Llama 3), spells any text without an unknown token; `unigram`: the
    SentencePiece unigram model with NFKC normalisation and `▁` for spaces (T5, Llama 2's kind);
    `wordpiece`: BERT's (lower-cased, split on whitespace and punctuation, `##` continuations)."""

    vocab_size: int = Field(default=32_000, ge=64, le=1_048_576)
    """Tokens in the vocabulary, special tokens (and for `bpe` the 256 bytes) included."""

    min_frequency: int | None = Field(default=None, ge=1, le=1_000_000)
    """Fewest occurrences of a pair (`bpe`) or of a word piece (`wordpiece`) to make it a token; unset:
    2. Not for `unigram`, whose trainer prunes by likelihood instead."""

    special_tokens: SpecialTokens = Field(default_factory=SpecialTokens)
    """Its special tokens."""

    chat_template: str | None = Field(default=None, min_length=1, max_length=65_536)
    """A Jinja chat template stored with the tokenizer, for later instruction tuning on chat messages;
    its role markers belong in `specialTokens.additional`."""

    model_max_length: int = Field(default=4096, ge=8, le=1_048_576)
    """Longest sequence the models using it read (`model_max_length` of the tokenizer)."""

    cel_rules = (
        CelRule(
            rule="self.algorithm != 'unigram' || !has(self.minFrequency)",
            message="minFrequency applies to bpe and wordpiece: the unigram trainer prunes by likelihood",
            field_path=".minFrequency",
            reason="FieldValueForbidden",
        ),
    )


class MethodSpec(ApiModel):
    type: TrainingMethod = TrainingMethod.LORA
    """`full` fine-tune, `lora`, `qlora` (LoRA on a 4-bit base), `dpo` (preference pairs), `pretrain`,
    `reward` (a reward model: a scalar head on the model, trained on preference pairs with the
    Bradley-Terry loss) or `tokenizer` (train a tokenizer on the data instead of a model)."""

    lora: LoraSpec | None = None
    """LoRA settings; used by `lora` and `qlora` (defaults when absent), and by `dpo` and `reward` when
    set (they then train adapters, and `reward` its score head in full, instead of the whole model)."""

    dpo: DpoSpec | None = None
    """DPO settings; used by `dpo` (defaults when absent)."""

    tokenizer: TokenizerSpec | None = None
    """Tokenizer settings; used by `tokenizer` (defaults when absent)."""

    backend: AdapterBackend = AdapterBackend.PEFT
    """Library that loads the model and adds the adapters for `lora` and `qlora`: `peft`, or `unsloth`
    (Unsloth's patched kernels and 4-bit loading; one CUDA GPU per process, with strategy `ddp`, in an
    image that has Unsloth installed: set `image`)."""

    @property
    def trains_adapters(self) -> bool:
        """Whether the method trains LoRA adapters (its output is an adapter) rather than all weights."""
        return self.type in (TrainingMethod.LORA, TrainingMethod.QLORA) or (
            self.type in PREFERENCE_METHODS and self.lora is not None
        )

    cel_rules = (
        CelRule(
            rule="self.backend == 'peft' || self.type in ['lora', 'qlora']",
            message="backend unsloth applies only to method types lora and qlora",
            field_path=".backend",
        ),
        CelRule(
            rule="self.type == 'dpo' || !has(self.dpo)",
            message="dpo settings apply only to method type dpo",
            field_path=".dpo",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.type in ['lora', 'qlora', 'dpo', 'reward'] || !has(self.lora)",
            message="lora settings apply only to method types lora, qlora, dpo and reward",
            field_path=".lora",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.type == 'tokenizer' || !has(self.tokenizer)",
            message="tokenizer settings apply only to method type tokenizer",
            field_path=".tokenizer",
            reason="FieldValueForbidden",
        ),
    )


class FsdpSpec(ApiModel):
    reshard_after_forward: bool = True
    """Free gathered parameters after forward (ZeRO-3-like memory); false keeps them (ZeRO-2-like speed)."""


DEEPSPEED_KEYS_OWNED_BY_SPEC = {
    "train_batch_size": "hyperparameters.perDeviceBatchSize and gradientAccumulationSteps",
    "train_micro_batch_size_per_gpu": "hyperparameters.perDeviceBatchSize",
    "gradient_accumulation_steps": "hyperparameters.gradientAccumulationSteps",
}
"""DeepSpeed keys the data loader depends on: overriding them would desynchronise it from DeepSpeed."""


class StrategySpec(ApiModel):
    type: StrategyType = StrategyType.DEEPSPEED
    """Distribution strategy: `deepspeed` (ZeRO), `fsdp` (PyTorch fully sharded) or `ddp`."""

    zero_stage: int | None = Field(default=None, ge=0, le=3)
    """DeepSpeed ZeRO stage 0-3 (deepspeed only; default 2)."""

    cpu_offload: CpuOffload = CpuOffload.NONE
    """Offload optimizer state (and with ZeRO-3, parameters) to CPU memory (deepspeed only)."""

    deepspeed_config: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={
            # Declared so that the CEL rule below can see them (free-form keys are invisible to CEL).
            "properties": {
                key: {"x-kubernetes-int-or-string": True, "description": f"Not allowed: set {owner}."}
                for key, owner in DEEPSPEED_KEYS_OWNED_BY_SPEC.items()
            }
        },
    )
    """DeepSpeed config keys merged over the generated config (deep merge; yours win). The merged
    config is logged at start."""

    fsdp: FsdpSpec | None = None
    """FSDP settings (fsdp only)."""

    launcher: Launcher = Launcher.TORCHRUN
    """What starts the training processes on each worker: `torchrun`, or `accelerate launch` with an
    Accelerate config the operator renders beside the runtime config (machines, processes, this
    worker's rank, rank 0's address, mixed precision). Either way the runtime's strategy (DeepSpeed,
    FSDP or DDP) shards the model, not Accelerate's plugins."""

    cel_rules = (
        CelRule(
            rule="self.type == 'deepspeed' || !has(self.zeroStage)",
            message="zeroStage applies only to strategy type deepspeed",
            field_path=".zeroStage",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.type == 'deepspeed' || self.cpuOffload == 'none'",
            message="cpuOffload applies only to strategy type deepspeed",
            field_path=".cpuOffload",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.type == 'deepspeed' || !has(self.deepspeedConfig)",
            message="deepspeedConfig applies only to strategy type deepspeed",
            field_path=".deepspeedConfig",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.type == 'fsdp' || !has(self.fsdp)",
            message="fsdp settings apply only to strategy type fsdp",
            field_path=".fsdp",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.cpuOffload == 'none' || !has(self.zeroStage) || self.zeroStage > 0",
            message="cpuOffload needs ZeRO stage 1, 2 or 3",
            field_path=".cpuOffload",
        ),
        CelRule(
            rule="self.cpuOffload != 'optimizer_and_params' || (has(self.zeroStage) && self.zeroStage == 3)",
            message="optimizer_and_params offloads parameters, which only zeroStage 3 partitions: set "
            "zeroStage: 3 or offload the optimizer only",
            field_path=".cpuOffload",
        ),
        CelRule(
            rule="!has(self.deepspeedConfig) || "
            + " && ".join(f"!has(self.deepspeedConfig.{key})" for key in DEEPSPEED_KEYS_OWNED_BY_SPEC),
            message="deepspeedConfig may not set "
            + ", ".join(f"{key} (set {owner})" for key, owner in DEEPSPEED_KEYS_OWNED_BY_SPEC.items())
            + ": the data loader reads them from the spec",
            field_path=".deepspeedConfig",
            reason="FieldValueForbidden",
        ),
    )


class Hyperparameters(ApiModel):
    learning_rate: float = Field(default=2e-4, gt=0.0, le=1.0)
    """Peak learning rate."""

    lr_schedule: LrSchedule = LrSchedule.COSINE
    """Learning-rate schedule after warm-up."""

    warmup_steps: int = Field(default=0, ge=0, le=MAX_STEPS)
    """Linear warm-up steps."""

    epochs: int = Field(default=1, ge=1, le=1000)
    """Passes over the data (ignored when `maxSteps` is set)."""

    max_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    """Stop after this many optimizer steps."""

    per_device_batch_size: int = Field(default=1, ge=1, le=4096)
    """Sequences per GPU per micro-step."""

    gradient_accumulation_steps: int = Field(default=1, ge=1, le=4096)
    """Micro-steps per optimizer step."""

    sequence_length: int = Field(default=2048, ge=8, le=1048576)
    """Tokens per sequence (longer examples are truncated)."""

    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""

    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    """AdamW weight decay."""

    max_grad_norm: float = Field(default=1.0, ge=0.0, le=1000.0)
    """Gradient clipping norm (0 disables)."""

    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    """Seed for data order, initialisation and dropout."""

    cel_rules = (
        CelRule(
            rule="!has(self.maxSteps) || self.epochs == 1",
            message="set either maxSteps or epochs (maxSteps overrides epochs); remove one",
            field_path=".epochs",
        ),
        CelRule(
            rule="!has(self.maxSteps) || self.warmupSteps < self.maxSteps",
            message="warmupSteps must be less than maxSteps",
            field_path=".warmupSteps",
        ),
    )


class CheckpointSpec(ApiModel):
    uri: FileUri | None = None
    """Where checkpoints go: a local/PVC path or a blob URI. Unset: under `output.uri`/checkpoints."""

    interval_steps: int = Field(default=500, ge=1, le=MAX_STEPS)
    """Save every N optimizer steps (and always on SIGTERM, e.g. a spot eviction)."""

    keep_last: int = Field(default=3, ge=1, le=100)
    """How many complete checkpoints to keep."""


class OutputSelect(StrEnum):
    LAST = "last"
    BEST = "best"


class OutputSpec(ApiModel):
    uri: FileUri
    """Where the final model (or adapter) is written: a local/PVC path or a blob URI."""

    merge_adapter: bool = False
    """After training, also merge the LoRA adapter into its base model and write the merged model under
    `<uri>/merged` (rank 0, peft `merge_and_unload`), for engines that cannot serve adapters. Only for
    methods that train adapters (`lora`, `qlora`, `dpo` with `method.lora`)."""

    select: OutputSelect = OutputSelect.LAST
    """Which weights are written: `last` (those of the final step) or `best` (those of the checkpoint
    with the lowest held-out loss, `evaluation`; every checkpoint is then evaluated, and the best one is
    kept whatever `checkpoint.keepLast` says)."""


CHECKPOINT_SUBDIR = "checkpoints"
"""Where checkpoints go under `output.uri` when `checkpoint.uri` is unset."""
LOGS_SUBDIR = "logs"
"""Where, under the checkpoint URI, each worker's log is saved: `logs/attempt-N/POD.log`."""


def checkpoint_location(checkpoint: CheckpointSpec, output: OutputSpec) -> str:
    """The checkpoint URI a job uses: `checkpoint.uri`, else `output.uri`/checkpoints."""
    return checkpoint.uri or f"{output.uri.rstrip('/')}/{CHECKPOINT_SUBDIR}"


def attempt_logs_location(checkpoint: CheckpointSpec, output: OutputSpec, attempt: int) -> str:
    """Where the workers of gang attempt `attempt` save their logs (one file per pod)."""
    return f"{checkpoint_location(checkpoint, output).rstrip('/')}/{LOGS_SUBDIR}/attempt-{attempt}"


class TrackerMode(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class TrackerSpec(ApiModel):
    """A hosted experiment tracker (Weights & Biases or CometML): where rank 0 logs the run.

    The run is named after the TrainingJob and keyed by its UID, so a gang restart continues the same
    run; the config (without `job` and `tracking`) is logged as its parameters and every step's
    metrics as they are reported. A tracker that cannot be reached is logged and dropped: it never
    stops training."""

    project: str = Field(min_length=1, max_length=128)
    """Project the run is logged to."""

    workspace: str | None = Field(default=None, min_length=1, max_length=128)
    """Team or user the project belongs to (the W&B entity, the Comet workspace); unset: the API key's
    default."""

    mode: TrackerMode = TrackerMode.ONLINE
    """`online` logs to the server as training runs; `offline` writes the run under `output.uri` (`wandb/`,
    `comet/`) for a later `wandb sync` or `comet upload`, with no API key and no network."""

    api_key_secret: SecretKeyRef | None = None
    """Secret key holding the API key, given to the workers as `WANDB_API_KEY` or `COMET_API_KEY`;
    required in `online` mode."""

    url: HttpUrl | None = None
    """Server of a self-hosted or dedicated instance (W&B `base_url`, Comet's URL override); unset: the
    vendor's cloud."""

    cel_rules = (
        CelRule(
            rule="self.mode == 'offline' || has(self.apiKeySecret)",
            message="apiKeySecret is required in online mode (set mode: offline to log without a key)",
            field_path=".apiKeySecret",
            reason="FieldValueRequired",
        ),
    )


class TrackingSpec(ApiModel):
    mlflow_uri: MlflowUri | None = None
    """MLflow tracking server URI; metrics and params are logged there when set."""

    experiment: str | None = Field(default=None, min_length=1, max_length=256)
    """MLflow experiment name (default: the namespace)."""

    pushgateway_url: HttpUrl | None = None
    """Prometheus Pushgateway URL; rank 0 pushes its metrics there when set."""

    wandb: TrackerSpec | None = None
    """Weights & Biases: log the run to this project."""

    comet: TrackerSpec | None = None
    """CometML: log the run as an experiment in this project."""
