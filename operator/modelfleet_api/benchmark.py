"""What a BenchmarkSweep measures and what one benchmark Job (`modelfleet-bench`) reads.

A sweep holds a ``LoadPattern`` with several load points; the operator runs one Job per point and
target, each with a ``BenchmarkRuntimeConfig`` holding exactly one ``LoadPoint``
(``LoadPattern.points()`` does that expansion, so both sides expand it the same way).
Every metric named here is defined in `serving-runtime/README.md`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import Field, model_validator

from modelfleet_api.base import ApiModel, CelRule


class Protocol(StrEnum):
    OPENAI_CHAT = "openai-chat"
    """`POST /v1/chat/completions`, streamed (vLLM, SGLang, TGI, LMDeploy, transformers serve)."""
    OPENAI_COMPLETIONS = "openai-completions"
    """`POST /v1/completions`, streamed."""
    KSERVE_V2_HTTP = "kserve-v2-http"
    """Triton's KServe v2 inference protocol over HTTP (`generate_stream` when streaming)."""
    KSERVE_V2_GRPC = "kserve-v2-grpc"
    """Triton's KServe v2 inference protocol over gRPC (decoupled streaming when streaming)."""


class Distribution(StrEnum):
    CONSTANT = "constant"
    UNIFORM = "uniform"
    NORMAL = "normal"


class LengthDistribution(ApiModel):
    """A token-length distribution; samples are integers clipped to [min, max]."""

    cel_rules = (CelRule(rule="self.min <= self.max", message="min must be <= max", field_path=".min"),)

    distribution: Distribution = Distribution.CONSTANT
    """`constant` (always `mean`), `uniform` (between `min` and `max`) or `normal` (`mean`, `stddev`)."""

    mean: int = Field(ge=1, le=1048576)
    """Mean length in tokens (the value itself for `constant`)."""

    stddev: float = Field(default=0.0, ge=0.0, le=1048576.0)
    """Standard deviation for `normal`."""

    min: int = Field(default=1, ge=1, le=1048576)
    """Smallest length drawn."""

    max: int = Field(default=1048576, ge=1, le=1048576)
    """Largest length drawn."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class PromptsFile(ApiModel):
    uri: str = Field(min_length=1, max_length=1024)
    """JSONL file, one record per line: ShareGPT style `{"conversations": [{"from": "human", "value":
    ...}, {"from": "gpt", "value": ...}]}` (OpenAI style `{"messages": [{"role", "content"}]}` is read
    too). The first user turn is the prompt. A local path, a PVC path or a blob URI."""

    max_prompts: int | None = Field(default=None, ge=1, le=10_000_000)
    """Read at most this many records."""

    output_tokens: LengthDistribution | None = None
    """Output lengths to request. Unset: the length of each record's reference reply (the first
    assistant turn after the prompt), counted with the model's tokenizer."""


class SyntheticWorkload(ApiModel):
    input_tokens: LengthDistribution
    """Prompt lengths (made of random vocabulary tokens, decoded to text)."""

    output_tokens: LengthDistribution
    """Output lengths to request (`max_tokens`)."""


class Workload(ApiModel):
    """Exactly one of `promptsFile` and `synthetic`."""

    cel_rules = (
        CelRule(
            rule="has(self.promptsFile) != has(self.synthetic)",
            message="set exactly one of promptsFile and synthetic",
            reason="FieldValueRequired",
        ),
    )

    prompts_file: PromptsFile | None = None
    """Prompts from a file."""

    synthetic: SyntheticWorkload | None = None
    """Generated prompts with the given length distributions."""

    seed: int = Field(default=0, ge=0)
    """Seed for prompt sampling, lengths and arrival times: the same seed gives the same requests."""

    ignore_eos: bool = False
    """Ask the server to keep generating past end-of-sequence so every request produces exactly the
    requested output length (vLLM and SGLang honour `ignore_eos`; others ignore it)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.prompts_file is None) == (self.synthetic is None):
            raise ValueError("workload: set exactly one of promptsFile and synthetic")
        return self


class LoadMode(StrEnum):
    CLOSED_LOOP = "closed-loop"
    """A fixed number of users, each sending its next request when the previous one finished."""
    OPEN_LOOP = "open-loop"
    """Requests arrive at a fixed rate whether or not earlier ones finished."""


class ArrivalProcess(StrEnum):
    POISSON = "poisson"
    """Exponential gaps between requests, mean 1/rate."""
    CONSTANT = "constant"
    """Evenly spaced requests, 1/rate apart."""


class _LoadBounds(ApiModel):
    """What both a sweep's pattern and a single load point bound a run by."""

    requests: int | None = Field(default=None, ge=1, le=10_000_000)
    """Measured requests per load point (after warm-up). With `durationSeconds`, whichever ends first."""

    duration_seconds: float | None = Field(default=None, gt=0.0, le=86_400.0)
    """Length of the measured phase of each load point."""

    warmup_requests: int = Field(default=0, ge=0, le=100_000)
    """Requests sent first and left out of every metric (cache warm-up, CUDA graphs, JIT)."""

    max_in_flight: int = Field(default=1024, ge=1, le=100_000)
    """Open loop: most requests outstanding at once; arrivals beyond it wait (counted as scheduling
    delay) rather than opening unbounded connections."""

    request_timeout_seconds: float = Field(default=600.0, gt=0.0, le=86_400.0)
    """A request not finished after this long counts as an error."""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.requests is None and self.duration_seconds is None:
            raise ValueError("load: set requests, durationSeconds or both")
        return self


class LoadPattern(_LoadBounds):
    """A sweep over load points: one concurrency or request rate per point."""

    cel_rules = (
        CelRule(
            rule="has(self.requests) || has(self.durationSeconds)",
            message="set requests, durationSeconds or both",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="self.mode != 'closed-loop' || (has(self.concurrency) && size(self.concurrency) > 0)",
            message="closed-loop needs at least one concurrency",
            field_path=".concurrency",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="self.mode != 'open-loop' || (has(self.requestRates) && size(self.requestRates) > 0)",
            message="open-loop needs at least one request rate",
            field_path=".requestRates",
            reason="FieldValueRequired",
        ),
    )

    mode: LoadMode = LoadMode.CLOSED_LOOP
    """`closed-loop` (fixed concurrency) or `open-loop` (fixed request rate)."""

    concurrency: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=list, max_length=64)
    """Closed loop: the concurrency of each load point."""

    request_rates: list[Annotated[float, Field(gt=0.0, le=1_000_000.0)]] = Field(
        default_factory=list, max_length=64
    )
    """Open loop: the request rate (requests/s) of each load point."""

    arrival: ArrivalProcess = ArrivalProcess.POISSON
    """Open loop: how arrivals are spaced."""

    @model_validator(mode="after")
    def _points_given(self) -> Self:
        if self.mode is LoadMode.CLOSED_LOOP and not self.concurrency:
            raise ValueError("load.concurrency: closed-loop needs at least one concurrency")
        if self.mode is LoadMode.OPEN_LOOP and not self.request_rates:
            raise ValueError("load.requestRates: open-loop needs at least one request rate")
        return self

    def points(self) -> list[LoadPoint]:
        """One load point per concurrency (closed loop) or request rate (open loop), in order."""
        bounds = _LoadBounds.model_fields.keys()
        common = {name: getattr(self, name) for name in bounds}
        if self.mode is LoadMode.CLOSED_LOOP:
            return [LoadPoint(mode=self.mode, concurrency=c, **common) for c in self.concurrency]
        return [
            LoadPoint(mode=self.mode, request_rate=r, arrival=self.arrival, **common)
            for r in self.request_rates
        ]


class LoadPoint(_LoadBounds):
    """One load level, run by one benchmark Job."""

    cel_rules = (
        CelRule(
            rule="has(self.requests) || has(self.durationSeconds)",
            message="set requests, durationSeconds or both",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="self.mode != 'closed-loop' || has(self.concurrency)",
            message="closed-loop needs concurrency",
            field_path=".concurrency",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="self.mode != 'open-loop' || has(self.requestRate)",
            message="open-loop needs requestRate",
            field_path=".requestRate",
            reason="FieldValueRequired",
        ),
    )

    mode: LoadMode
    """`closed-loop` or `open-loop`."""

    concurrency: int | None = Field(default=None, ge=1, le=100_000)
    """Closed loop: concurrent users."""

    request_rate: float | None = Field(default=None, gt=0.0, le=1_000_000.0)
    """Open loop: requests per second."""

    arrival: ArrivalProcess = ArrivalProcess.POISSON
    """Open loop: how arrivals are spaced."""

    @model_validator(mode="after")
    def _level_given(self) -> Self:
        if self.mode is LoadMode.CLOSED_LOOP and self.concurrency is None:
            raise ValueError("load.concurrency: required for closed-loop")
        if self.mode is LoadMode.OPEN_LOOP and self.request_rate is None:
            raise ValueError("load.requestRate: required for open-loop")
        return self

    @property
    def label(self) -> str:
        if self.mode is LoadMode.CLOSED_LOOP:
            return f"concurrency={self.concurrency}"
        return f"rate={self.request_rate:g}/s ({self.arrival})"


class Slos(ApiModel):
    """Service-level objectives. A request is *good* when it meets every threshold set here; goodput
    counts good requests per second, and a load point meets its SLOs when the p95 of each metric is
    within its threshold. Unset thresholds are not checked."""

    ttft_p95_ms: float | None = Field(default=None, gt=0.0)
    """Time to first token, milliseconds."""

    tpot_p95_ms: float | None = Field(default=None, gt=0.0)
    """Time per output token after the first, milliseconds."""

    e2e_p95_ms: float | None = Field(default=None, gt=0.0, alias="e2eP95Ms")
    """End-to-end request latency, milliseconds."""


class KServeSettings(ApiModel):
    """Tensor names of a Triton TensorRT-LLM (ensemble or BLS) model; the defaults are the backend's."""

    text_input: str = Field(default="text_input", max_length=128)
    """Input tensor with the prompt (BYTES)."""

    max_tokens: str = Field(default="max_tokens", max_length=128)
    """Input tensor with the output length (INT32)."""

    stream: str = Field(default="stream", max_length=128)
    """Input tensor that switches streaming on (BOOL)."""

    text_output: str = Field(default="text_output", max_length=128)
    """Output tensor with the generated text (BYTES)."""

    streaming: bool = True
    """Stream tokens (decoupled model); without it TTFT equals end-to-end latency."""


class PushgatewaySink(ApiModel):
    url: str = Field(min_length=1, max_length=1024)
    """Prometheus Pushgateway address, e.g. `http://pushgateway.monitoring:9091`."""

    job: str = Field(default="modelfleet-bench", max_length=128)
    """`job` label of the pushed group."""


class MlflowSink(ApiModel):
    tracking_uri: str = Field(min_length=1, max_length=1024)
    """MLflow tracking server URI."""

    experiment: str = Field(default="modelfleet-bench", max_length=256)
    """Experiment the run is logged to."""


BLOB_URI_PATTERN = (
    r"^(az://|https://[a-z0-9]{3,24}\.blob\.core\.windows\.net/)[a-z0-9][a-z0-9-]{1,62}"
    r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
)
"""`az://CONTAINER[/PATH]` or `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]`: URL characters
only (percent-encode others), and no query (no SAS tokens in a spec)."""
RESULTS_URI_MAX_LENGTH = 1536
"""Longest blob prefix of a load point: a sweep's `sinks.blobUri` (1024) + `/<namespace>/<sweep>/point-N`."""


class Sinks(ApiModel):
    """Where a load point's results go besides its output directory. Each sink is tried on its own; one
    that fails is logged and reported (termination message `sinkErrors`), the run still succeeds."""

    pushgateway: PushgatewaySink | None = None
    """Push the summary metrics of each load point to a Prometheus Pushgateway."""

    mlflow: MlflowSink | None = None
    """Log parameters, summary metrics and the result files to MLflow."""

    blob_uri: str | None = Field(default=None, max_length=RESULTS_URI_MAX_LENGTH, pattern=BLOB_URI_PATTERN)
    """Azure Blob prefix the point's result files are uploaded under (`<blobUri>/results.json`,
    `<blobUri>/requests.csv`, overwriting): `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`, or
    `az://CONTAINER/PATH` with the account in `AZURE_STORAGE_ACCOUNT`. Credentials:
    `AZURE_STORAGE_CONNECTION_STRING` when set, else workload identity (DefaultAzureCredential)."""


class BenchmarkRuntimeConfig(ApiModel):
    """Everything one benchmark Job needs: one target, one load point."""

    target_url: str = Field(min_length=1, max_length=1024)
    """Base URL of the server, e.g. `http://llama-8b.team-a:8000` (gRPC: `host:port`)."""

    target_name: str = Field(default="target", min_length=1, max_length=253)
    """Label of the target in results and plots (the ModelDeployment name)."""

    model: str = Field(min_length=1, max_length=256)
    """Model name sent in requests (Triton: the model to infer on)."""

    protocol: Protocol = Protocol.OPENAI_CHAT
    """Wire protocol."""

    kserve: KServeSettings = Field(default_factory=KServeSettings)
    """Triton tensor names (KServe v2 protocols only)."""

    workload: Workload
    """What to send."""

    load: LoadPoint
    """How hard to send it."""

    slos: Slos = Field(default_factory=Slos)
    """Objectives for goodput."""

    tokenizer: str | None = Field(default=None, max_length=1024)
    """Tokenizer (local path or Hugging Face id) for synthetic prompts, reference reply lengths and
    counting output tokens when the server reports no usage."""

    api_key_env: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding the API key sent as a bearer token."""

    workers: int = Field(default=1, ge=1, le=64)
    """Load-generator processes; the load is split evenly between them."""

    output_dir: str = Field(default="/results", min_length=1, max_length=1024)
    """Directory for `results.json`, `requests.csv` and the plot."""

    sinks: Sinks = Field(default_factory=Sinks)
    """Optional exports."""

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_wire(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> BenchmarkRuntimeConfig:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def from_file(cls, path: str | Path) -> BenchmarkRuntimeConfig:
        """Not ``load`` as on the other runtime configs: that name is this model's load-point field."""
        return cls.from_yaml(Path(path).read_text())
