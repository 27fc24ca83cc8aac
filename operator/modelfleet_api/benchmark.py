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
from modelfleet_api.common import SET, HttpUrl, MlflowUri
from modelfleet_api.quality import QualitySpec
from modelfleet_api.storage import BLOB_ONLY, PodFileUri, TokenizerUri, uri_check, uri_constraints


class Protocol(StrEnum):
    OPENAI_CHAT = "openai-chat"
    """`POST /v1/chat/completions`, streamed (vLLM, SGLang, TGI, LMDeploy, transformers serve)."""
    OPENAI_COMPLETIONS = "openai-completions"
    """`POST /v1/completions`, streamed."""
    KSERVE_V2_HTTP = "kserve-v2-http"
    """Triton's KServe v2 inference protocol over HTTP (`generate_stream` when streaming)."""
    KSERVE_V2_GRPC = "kserve-v2-grpc"
    """Triton's KServe v2 inference protocol over gRPC (decoupled streaming when streaming)."""


OPENAI_PROTOCOLS = frozenset({Protocol.OPENAI_CHAT, Protocol.OPENAI_COMPLETIONS})
"""Protocols of the engines that serve their Prometheus `/metrics` on the API port."""


class Distribution(StrEnum):
    CONSTANT = "constant"
    UNIFORM = "uniform"
    NORMAL = "normal"


class LengthDistribution(ApiModel):
    """A token-length distribution; samples are integers clipped to [min, max]."""

    cel_rules = (
        CelRule(rule="self.min <= self.max", message="min must be <= max", field_path=".min"),
        CelRule(
            rule="self.min <= self.mean && self.mean <= self.max",
            message="mean must lie within [min, max] (samples are clipped to it)",
            field_path=".mean",
        ),
        CelRule(
            rule="self.distribution == 'normal' || self.stddev == 0.0",
            message="stddev applies to distribution normal only",
            field_path=".stddev",
            reason="FieldValueForbidden",
        ),
    )

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
        if not self.min <= self.mean <= self.max:
            raise ValueError(f"mean ({self.mean}) must lie within [min, max] ([{self.min}, {self.max}])")
        if self.distribution is not Distribution.NORMAL and self.stddev != 0.0:
            raise ValueError(f"stddev applies to distribution normal only, not {self.distribution}")
        return self


class PromptsFile(ApiModel):
    uri: PodFileUri
    """Conversations or prompts, one record per line (JSONL) or a JSON array of records (the layout of
    the published ShareGPT files): ShareGPT style `{"conversations": [{"from": "human", "value": ...},
    {"from": "gpt", "value": ...}]}`, OpenAI style `{"messages": [{"role", "content"}]}`, or a plain
    prompt `{"prompt": ...}` (or `{"text": ...}`). Without `multiTurn` the first user turn is the
    prompt. A local path (`file://` optional) or an Azure Blob URI (`az://CONTAINER/PATH`,
    `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`), downloaded with the pod's identity."""

    max_prompts: int | None = Field(default=None, ge=1, le=10_000_000)
    """Read at most this many records."""

    output_tokens: LengthDistribution | None = None
    """Output lengths to request. Unset: the length of each record's reference reply (the assistant
    turn after the prompt), counted with the model's tokenizer; plain prompts have none, so a file of
    them needs this."""


class SyntheticWorkload(ApiModel):
    input_tokens: LengthDistribution
    """Prompt lengths (made of random vocabulary tokens, decoded to text)."""

    output_tokens: LengthDistribution
    """Output lengths to request (`max_tokens`)."""


class ThinkTime(ApiModel):
    """Seconds a user waits after a reply before sending the next turn; samples clipped to [min, max]."""

    cel_rules = (
        CelRule(
            rule="self.minSeconds <= self.maxSeconds",
            message="minSeconds must be <= maxSeconds",
            field_path=".minSeconds",
        ),
    )

    distribution: Distribution = Distribution.CONSTANT
    """`constant` (always `meanSeconds`), `uniform` (between the bounds) or `normal`."""

    mean_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    """Mean think time (the value itself for `constant`)."""

    stddev_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    """Standard deviation for `normal`."""

    min_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    """Shortest think time drawn."""

    max_seconds: float = Field(default=3600.0, ge=0.0, le=3600.0)
    """Longest think time drawn."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_seconds > self.max_seconds:
            raise ValueError(f"minSeconds ({self.min_seconds}) must be <= maxSeconds ({self.max_seconds})")
        return self


class MultiTurn(ApiModel):
    """Conversations of several turns. Each user turn after the first is sent `thinkTime` after the reply
    to the previous one, with the conversation so far: the earlier user turns and the server's own
    replies, as a chat client does (so the engine can reuse the conversation's cached prefix). Needs the
    `openai-chat` protocol. Closed loop: each user holds one conversation at a time. Open loop:
    conversations start at the request rate, and their later turns follow the replies."""

    turns: int = Field(default=4, ge=1, le=1000)
    """Synthetic workloads: user turns of every conversation. `promptsFile`: at most this many user
    turns of each conversation, from its start (a conversation with fewer has fewer)."""

    think_time: ThinkTime = Field(default_factory=ThinkTime)
    """Wait between a reply and the next user turn."""


class SharedPrefixWorkload(ApiModel):
    """`prefixes` distinct prefixes, each followed by `suffixesPerPrefix` distinct suffixes, sent in a
    seeded random order: every prefix opens that many prompts, which an engine with prefix caching
    computes once. Made of random vocabulary tokens decoded to text, like `synthetic`."""

    prefixes: int = Field(ge=1, le=100_000)
    """Distinct shared prefixes (N)."""

    suffixes_per_prefix: int = Field(ge=1, le=100_000)
    """Prompts per prefix (M): N x M prompts in all, reused in order if the point sends more."""

    prefix_tokens: int = Field(ge=1, le=1_048_576)
    """Length of every prefix in tokens."""

    suffix_tokens: LengthDistribution
    """Lengths of the suffixes."""

    output_tokens: LengthDistribution
    """Output lengths to request (`max_tokens`)."""


class TraceReplay(ApiModel):
    """Requests recorded in a trace (the `trace.jsonl` that `modelfleet-bench` writes for every point,
    or any JSONL with the same keys): each line's `messages` (chat) or `prompt` and `max_tokens` are
    sent as recorded, multi-turn histories included. With `load.arrival: trace` they are sent at the
    recorded `offset_s` (seconds after the first), time-scaled to the point's request rate; otherwise
    in order, at the load's own pace."""

    uri: PodFileUri
    """The trace: a local path or an Azure Blob URI, like `promptsFile.uri`."""

    max_requests: int | None = Field(default=None, ge=1, le=10_000_000)
    """Read at most this many requests."""


class Workload(ApiModel):
    """Exactly one of `promptsFile`, `synthetic`, `sharedPrefix` and `trace`."""

    cel_rules = (
        CelRule(
            rule=(
                "(has(self.promptsFile) ? 1 : 0) + (has(self.synthetic) ? 1 : 0)"
                " + (has(self.sharedPrefix) ? 1 : 0) + (has(self.trace) ? 1 : 0) == 1"
            ),
            message="set exactly one of promptsFile, synthetic, sharedPrefix and trace",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!has(self.multiTurn) || has(self.promptsFile) || has(self.synthetic)",
            message="multiTurn makes conversations of promptsFile or synthetic workloads "
            "(a trace already holds its turns)",
            field_path=".multiTurn",
            reason="FieldValueForbidden",
        ),
    )

    prompts_file: PromptsFile | None = None
    """Prompts or conversations from a file."""

    synthetic: SyntheticWorkload | None = None
    """Generated prompts with the given length distributions."""

    shared_prefix: SharedPrefixWorkload | None = None
    """Generated prompts that share prefixes (N prefixes x M suffixes), to exercise prefix caching."""

    trace: TraceReplay | None = None
    """Requests replayed from a per-request trace."""

    multi_turn: MultiTurn | None = None
    """Send conversations of several turns (`promptsFile` or `synthetic` only)."""

    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    """Seed for prompt sampling, lengths, think times and arrival times: the same seed gives the same
    requests."""

    ignore_eos: bool = False
    """Ask the server to keep generating past end-of-sequence so every request produces exactly the
    requested output length (vLLM and SGLang honour `ignore_eos`; others ignore it)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        sources = (self.prompts_file, self.synthetic, self.shared_prefix, self.trace)
        if sum(source is not None for source in sources) != 1:
            raise ValueError("workload: set exactly one of promptsFile, synthetic, sharedPrefix and trace")
        if self.multi_turn is not None and self.prompts_file is None and self.synthetic is None:
            raise ValueError("workload.multiTurn: needs promptsFile or synthetic (a trace holds its turns)")
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
    TRACE = "trace"
    """At the offsets recorded in `workload.trace`, time-scaled so their mean rate is the request rate."""


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

    late_threshold_ms: float = Field(default=10.0, gt=0.0, le=60_000.0)
    """A request sent more than this after its planned time is *late*; a point with more than 1 % late
    requests did not hold its load (`heldLoad: false`)."""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.requests is None and self.duration_seconds is None:
            raise ValueError("load: set requests, durationSeconds or both")
        return self


class LoadSearch(ApiModel):
    """Search every target (and token lengths) for the highest load that meets the SLOs, instead of
    a fixed list of levels. The load (request rate, or concurrency in a closed loop) starts at
    `min` and doubles while the points meet the SLOs (capped at `max`), then bisects between the
    highest level that met them and the lowest that did not (geometric midpoint for rates) until the
    two are within `precision` (concurrency: adjacent), or `maxPoints` were measured. A level *meets
    the SLOs* when its point succeeded, the p95 of every SLO metric is within its threshold, the
    client held the load (`heldLoad`) and at most `maxErrorRate` of its requests failed. The result is
    the sweep's `status.frontier`."""

    cel_rules = (CelRule(rule="self.min <= self.max", message="min must be <= max", field_path=".min"),)

    min: float = Field(gt=0.0, le=1_000_000.0)
    """First level tried: requests/s (open loop) or concurrent users (closed loop, a whole number)."""

    max: float = Field(gt=0.0, le=1_000_000.0)
    """Highest level tried (a whole number in a closed loop)."""

    precision: float = Field(default=0.1, gt=0.0, le=1.0)
    """Stop once (lowest failing - highest meeting) / highest meeting is at most this."""

    max_points: int = Field(default=12, ge=1, le=64)
    """Most points measured per target and token lengths."""

    max_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Largest fraction of failed requests a level may have and still meet the SLOs."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"load.search.min ({self.min:g}) must be <= max ({self.max:g})")
        return self


class LoadPattern(_LoadBounds):
    """A sweep over load points: one concurrency or request rate per point, or a search (`search`)."""

    cel_rules = (
        CelRule(
            rule="has(self.requests) || has(self.durationSeconds)",
            message="set requests, durationSeconds or both",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule=(
                "self.mode != 'closed-loop' || has(self.search) || "
                "(has(self.concurrency) && size(self.concurrency) > 0)"
            ),
            message="closed-loop needs at least one concurrency (or search)",
            field_path=".concurrency",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule=(
                "self.mode != 'open-loop' || has(self.search) || "
                "(has(self.requestRates) && size(self.requestRates) > 0)"
            ),
            message="open-loop needs at least one request rate (or search)",
            field_path=".requestRates",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="self.mode != 'open-loop' || !has(self.concurrency) || size(self.concurrency) == 0",
            message="concurrency sets closed-loop load points; open-loop sends requestRates",
            field_path=".concurrency",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="self.mode != 'closed-loop' || !has(self.requestRates) || size(self.requestRates) == 0",
            message="requestRates set open-loop load points; closed-loop sends at concurrency",
            field_path=".requestRates",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule=(
                "!has(self.search) || ((!has(self.concurrency) || size(self.concurrency) == 0) && "
                "(!has(self.requestRates) || size(self.requestRates) == 0))"
            ),
            message="search chooses the load levels itself: leave concurrency and requestRates empty",
            field_path=".search",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule=(
                "!has(self.search) || self.mode != 'closed-loop' || "
                "(self.search.min == double(int(self.search.min)) && "
                "self.search.max == double(int(self.search.max)))"
            ),
            message="a closed-loop search is over concurrency: min and max must be whole numbers",
            field_path=".search",
        ),
    )

    mode: LoadMode = LoadMode.CLOSED_LOOP
    """`closed-loop` (fixed concurrency) or `open-loop` (fixed request rate)."""

    concurrency: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=list, max_length=64, json_schema_extra=SET
    )
    """Closed loop: the concurrency of each load point."""

    request_rates: list[Annotated[float, Field(gt=0.0, le=1_000_000.0)]] = Field(
        default_factory=list, max_length=64, json_schema_extra=SET
    )
    """Open loop: the request rate (requests/s) of each load point."""

    search: LoadSearch | None = None
    """Find the highest load meeting the SLOs (needs `slos`) instead of measuring listed levels."""

    arrival: ArrivalProcess = ArrivalProcess.POISSON
    """Open loop: how arrivals are spaced."""

    @model_validator(mode="after")
    def _points_given(self) -> Self:
        if self.search is not None:
            if self.concurrency or self.request_rates:
                raise ValueError(
                    "load.search: search chooses the load levels itself: leave concurrency and "
                    "requestRates empty"
                )
            whole = self.search.min.is_integer() and self.search.max.is_integer()
            if self.mode is LoadMode.CLOSED_LOOP and not whole:
                raise ValueError(
                    "load.search: a closed-loop search is over concurrency: min and max must be whole numbers"
                )
            return self
        if self.mode is LoadMode.CLOSED_LOOP and not self.concurrency:
            raise ValueError("load.concurrency: closed-loop needs at least one concurrency")
        if self.mode is LoadMode.OPEN_LOOP and not self.request_rates:
            raise ValueError("load.requestRates: open-loop needs at least one request rate")
        return self

    def point_at(self, level: float) -> LoadPoint:
        """The load point at `level`: a concurrency (closed loop) or a request rate (open loop)."""
        bounds = _LoadBounds.model_fields.keys()
        common = {name: getattr(self, name) for name in bounds}
        if self.mode is LoadMode.CLOSED_LOOP:
            return LoadPoint(mode=self.mode, concurrency=int(level), **common)
        return LoadPoint(mode=self.mode, request_rate=level, arrival=self.arrival, **common)

    def points(self) -> list[LoadPoint]:
        """One load point per concurrency (closed loop) or request rate (open loop), in order; with
        `search`, its first level (the search picks the next ones from their results)."""
        if self.search is not None:
            return [self.point_at(self.search.min)]
        levels = self.concurrency if self.mode is LoadMode.CLOSED_LOOP else self.request_rates
        return [self.point_at(level) for level in levels]


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
    def level(self) -> float:
        """The concurrency (closed loop) or request rate (open loop)."""
        value = self.concurrency if self.mode is LoadMode.CLOSED_LOOP else self.request_rate
        assert value is not None  # the validator requires the level of the mode
        return float(value)

    @property
    def label(self) -> str:
        if self.mode is LoadMode.CLOSED_LOOP:
            return f"concurrency={self.concurrency}"
        return f"rate={self.request_rate:g}/s ({self.arrival})"


MAX_SLO_MS = 3_600_000.0
"""An hour: no latency objective is longer."""


class Slos(ApiModel):
    """Service-level objectives. A request is *good* when it meets every threshold set here; goodput
    counts good requests per second, and a load point meets its SLOs when the p95 of each metric is
    within its threshold. Unset thresholds are not checked."""

    ttft_p95_ms: float | None = Field(default=None, gt=0.0, le=MAX_SLO_MS)
    """Time to first token, milliseconds."""

    tpot_p95_ms: float | None = Field(default=None, gt=0.0, le=MAX_SLO_MS)
    """Time per output token after the first, milliseconds."""

    e2e_p95_ms: float | None = Field(default=None, gt=0.0, le=MAX_SLO_MS, alias="e2eP95Ms")
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
    url: HttpUrl
    """Prometheus Pushgateway address, e.g. `http://pushgateway.monitoring:9091`."""

    job: str = Field(default="modelfleet-bench", max_length=128)
    """`job` label of the pushed group."""


class MlflowSink(ApiModel):
    tracking_uri: MlflowUri
    """MLflow tracking server URI."""

    experiment: str = Field(default="modelfleet-bench", max_length=256)
    """Experiment the run is logged to."""


RESULTS_URI_MAX_LENGTH = 1536
"""Longest blob prefix of a load point: a sweep's `sinks.blobUri` (1024) + `/<namespace>/<sweep>/point-N`."""
ResultsBlobUri = Annotated[str, uri_constraints(BLOB_ONLY, RESULTS_URI_MAX_LENGTH), uri_check(BLOB_ONLY)]
"""A load point's blob results prefix (longer than a sweep's: the sweep's plus the point's folder)."""


class Sinks(ApiModel):
    """Where a load point's results go besides its output directory. Each sink is tried on its own; one
    that fails is logged and reported (termination message `sinkErrors`), the run still succeeds."""

    pushgateway: PushgatewaySink | None = None
    """Push the summary metrics of each load point to a Prometheus Pushgateway."""

    mlflow: MlflowSink | None = None
    """Log parameters, summary metrics and the result files to MLflow."""

    blob_uri: ResultsBlobUri | None = None
    """Azure Blob prefix the point's result files are uploaded under (`<blobUri>/results.json`,
    `<blobUri>/requests.csv`, overwriting): `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`, or
    `az://CONTAINER/PATH` with the account in `AZURE_STORAGE_ACCOUNT`. Credentials:
    `AZURE_STORAGE_CONNECTION_STRING` when set, else workload identity (DefaultAzureCredential)."""


WORKLOAD_LOAD_RULES = (
    CelRule(
        rule="!has(self.workload.multiTurn) || !has(self.protocol) || self.protocol == 'openai-chat'",
        message="multi-turn conversations are sent as chat messages: they need protocol openai-chat",
        field_path=".workload.multiTurn",
    ),
    CelRule(
        rule="!has(self.load.arrival) || self.load.arrival != 'trace' || has(self.workload.trace)",
        message="arrival trace sends requests at a trace's recorded offsets: it needs workload.trace",
        field_path=".load.arrival",
    ),
)
"""Rules between the workload, the load and the protocol, on a sweep's spec and on a point's config."""

QUALITY_NEEDS_OPENAI = (
    "quality is scored through the OpenAI API (KServe v2 has no temperature to ask for greedy answers, "
    "and lm-eval's clients speak OpenAI): set protocol openai-chat or openai-completions"
)
QUALITY_PROTOCOL_RULE = CelRule(
    rule="!has(self.quality) || !has(self.protocol) || self.protocol in "
    f"[{', '.join(repr(str(p)) for p in sorted(OPENAI_PROTOCOLS))}]",
    message=QUALITY_NEEDS_OPENAI,
    field_path=".quality",
    reason="FieldValueForbidden",
)
"""The protocols quality is scored over, on a sweep's spec (a point's config checks ``quality_problem``)."""


def workload_load_problem(
    workload: Workload, arrival: ArrivalProcess, protocol: Protocol | None
) -> str | None:
    """What `WORKLOAD_LOAD_RULES` refuse, for the runtime config (which no API server checks)."""
    if workload.multi_turn is not None and protocol not in (None, Protocol.OPENAI_CHAT):
        return (
            "workload.multiTurn: multi-turn conversations are sent as chat messages: "
            f"they need protocol openai-chat, not {protocol}"
        )
    if arrival is ArrivalProcess.TRACE and workload.trace is None:
        return "load.arrival: trace sends requests at a trace's recorded offsets: it needs workload.trace"
    return None


def quality_problem(quality: QualitySpec | None, protocol: Protocol) -> str | None:
    """What ``QUALITY_PROTOCOL_RULE`` refuses, for a point's protocol once the target resolved it."""
    if quality is not None and protocol not in OPENAI_PROTOCOLS:
        return f"quality: {QUALITY_NEEDS_OPENAI}, not {protocol}"
    return None


class BenchmarkRuntimeConfig(ApiModel):
    """Everything one benchmark Job needs: one target, one load point."""

    target_url: str = Field(min_length=1, max_length=1024)
    """Base URL of the server, e.g. `http://llama-8b.team-a:8000` (gRPC: `host:port`)."""

    target_host: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]+$"
    )
    """`Host` header (gRPC: `:authority`) sent instead of the URL's host and port: for a `targetUrl` that is
    a proxy routing by host, such as the KEDA HTTP add-on's interceptor, which holds requests to a
    deployment at zero replicas and wakes it."""

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

    tokenizer: TokenizerUri | None = None
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

    engine_metrics_url: str | None = Field(default=None, max_length=1024)
    """The engine's Prometheus metrics, read before and after the measured phase for its prefix-cache
    hit rate; unset: `<targetUrl>/metrics` (vLLM, SGLang and TGI serve them on the API port)."""

    quality: QualitySpec | None = None
    """Score the target's answers after the load phase (OpenAI protocols only); the scores go into
    results.json and the termination message."""

    @model_validator(mode="after")
    def _workload_fits_load(self) -> Self:
        problem = workload_load_problem(self.workload, self.load.arrival, self.protocol)
        problem = problem or quality_problem(self.quality, self.protocol)
        if problem is not None:
            raise ValueError(problem)
        return self

    @classmethod
    def from_yaml(cls, text: str) -> BenchmarkRuntimeConfig:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def from_file(cls, path: str | Path) -> BenchmarkRuntimeConfig:
        """Not ``load`` as on the other runtime configs: that name is this model's load-point field."""
        return cls.from_yaml(Path(path).read_text())
