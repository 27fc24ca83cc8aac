"""The quality step of a point (`quality`): after the load phase, the target is scored through the same
endpoint and protocol the load used, and none of these requests is in the latency figures.

- Reference set: each prompt goes through the protocol adapter of the load (`openai-chat`: one user
  message; `openai-completions`: the prompt as it is), greedy (temperature 0, end of sequence honoured,
  at most `maxNewTokens`), `concurrency` at a time; the answers are scored by ``modelfleet_api.scoring``,
  as a TrainingJob scores its model. A failed request fails the step (an empty answer would score
  as a wrong one).
- lm-eval tasks: the harness's own OpenAI clients against the target's base URL:
  `local-chat-completions` for `openai-chat` (prompts as chat messages; `generate_until` tasks only,
  since a chat API returns no log-probabilities), `local-completions` for `openai-completions` (every
  kind of task; log-likelihood tasks need the model's tokenizer and an engine that returns prompt
  log-probabilities, which is asked once before the tasks run).

Scores are higher-is-better: the lm-eval scores the harness marks lower-is-better (a perplexity) are
kept in results.json only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from modelfleet_api import scoring
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, Protocol
from modelfleet_api.quality import EndpointLmEval, PointQuality, QualitySpec, ReferenceSet, floor_misses

from modelfleet_serve import blob
from modelfleet_serve.bench import datasets
from modelfleet_serve.bench.point import api_key
from modelfleet_serve.bench.protocols.openai import OpenAIClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord
from modelfleet_serve.model_cache import download_blob_prefix

log = logging.getLogger("modelfleet_bench")

REFERENCE_SET = "quality.referenceSet"
LM_EVAL = "quality.lmEval"
SCORE_DECIMALS = 4
"""Decimals of the scores in the termination message (and so in status); results.json keeps them whole."""
CHAT_OUTPUT_TYPES = frozenset({"generate_until"})
"""lm-eval task kinds a chat API can score: the others need log-probabilities of the prompt."""


@dataclass(frozen=True)
class QualityScores:
    """What the quality step measured."""

    scores: dict[str, float]
    """Every higher-is-better score, unrounded (what floors and regressions are judged on)."""
    lower_is_better: dict[str, float] = field(default_factory=dict)
    """lm-eval scores the harness marks lower-is-better (results.json only)."""
    reference_rows: int | None = None
    """Rows of the reference set scored."""

    def point_quality(self, floors: dict[str, float]) -> PointQuality:
        """The scores as the point reports them: rounded, with the client's verdict on the floors."""
        verdict = not floor_misses(PointQuality(scores=self.scores), floors) if floors else None
        rounded = {name: round(value, SCORE_DECIMALS) for name, value in self.scores.items()}
        return PointQuality(scores=rounded, meets_floor=verdict)

    def document(self, floors: dict[str, float]) -> dict[str, Any]:
        """The `quality` section of results.json."""
        return {
            "scores": self.scores,
            "lower_is_better": self.lower_is_better,
            "reference_rows": self.reference_rows,
            "floors": floors,
            "floor_misses": floor_misses(PointQuality(scores=self.scores), floors),
        }


def score_quality(config: BenchmarkRuntimeConfig, spec: QualitySpec) -> QualityScores:
    """Score the target as `spec` asks (files are read or downloaded into a temporary directory)."""
    scores: dict[str, float] = {}
    lower: dict[str, float] = {}
    rows = None
    with tempfile.TemporaryDirectory(prefix="modelfleet-quality-") as work:
        if spec.reference_set is not None:
            rows, found = reference_set_scores(config, spec.reference_set, spec.concurrency, Path(work))
            scores |= found
        if spec.lm_eval is not None:
            higher, lower = lm_eval_scores(config, spec.lm_eval, spec.concurrency, Path(work))
            scores |= higher
    log.info("%s quality: %s", config.target_name, scores)
    return QualityScores(scores, lower, rows)


def local_copy(uri: str, field: str, workdir: Path) -> Path:
    """The file or directory at `uri` here: a path in the pod as it is; from Azure Blob, a `.jsonl` blob
    or every blob under a prefix, downloaded into `workdir`."""
    location = blob.parse_blob_uri(uri, field)
    if location is None:
        return Path(uri.removeprefix("file://"))
    if location.prefix.endswith(".jsonl"):
        return datasets.local_file(uri, field, workdir)
    return download_blob_prefix(location, workdir / Path(location.prefix).name)


def reference_set_scores(
    config: BenchmarkRuntimeConfig, spec: ReferenceSet, concurrency: int, workdir: Path
) -> tuple[int, dict[str, float]]:
    """(rows scored, scores) of the target's answers to the reference set."""
    rows = scoring.reference_rows(local_copy(spec.uri, f"{REFERENCE_SET}.uri", workdir), spec, REFERENCE_SET)
    prompts = [prompt for prompt, _ in rows]
    answers = asyncio.run(ask(config, prompts, spec.max_new_tokens, concurrency))
    return len(rows), scoring.score(spec.metrics, answers, [references for _, references in rows])


async def ask(
    config: BenchmarkRuntimeConfig, prompts: list[str], max_tokens: int, concurrency: int
) -> list[str]:
    """Greedy answers of the target to `prompts`, through the protocol adapter the load used."""
    client = OpenAIClient(
        config.target_url,
        config.model,
        config.protocol is Protocol.OPENAI_CHAT,
        api_key=api_key(config),
        max_connections=concurrency,
        timeout_seconds=config.load.request_timeout_seconds,
        host=config.target_host,
    )
    records = [RequestRecord(index=i, warmup=False, scheduled=0.0) for i in range(len(prompts))]
    slots = asyncio.Semaphore(concurrency)

    async def answer(index: int) -> None:
        async with slots:
            await client.send(BenchRequest(prompts[index], max_tokens), records[index])

    async with client:
        await asyncio.gather(*(answer(i) for i in range(len(prompts))))
    failed = [r for r in records if not r.ok]
    if failed:
        raise ValueError(
            f"{REFERENCE_SET}: {len(failed)} of {len(prompts)} requests to {config.target_url} failed "
            f"(row {failed[0].index + 1}: {failed[0].error}); a reference set is not scored on part of "
            "its answers"
        )
    return [r.text for r in records]


def lm_eval_scores(
    config: BenchmarkRuntimeConfig, spec: EndpointLmEval, concurrency: int, workdir: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """(higher-is-better scores, lower-is-better scores) of the tasks run against the target."""
    from lm_eval import simple_evaluate

    directory = None
    if spec.tasks_uri is not None:
        directory = local_copy(spec.tasks_uri, f"{LM_EVAL}.tasksUri", workdir)
        if not directory.is_dir():
            raise ValueError(f"{LM_EVAL}.tasksUri: {directory} is not a directory")
    manager = scoring.lm_eval_task_manager(spec.tasks, directory, LM_EVAL)
    chat = config.protocol is Protocol.OPENAI_CHAT
    # tasks read their data files relative to their directory, wherever it was mounted or downloaded to
    with contextlib.chdir(directory) if directory else contextlib.nullcontext():
        likelihood = check_task_kinds(task_kinds(manager, spec.tasks), chat, config.tokenizer)
        if likelihood:
            check_prompt_logprobs(config)
        output = simple_evaluate(
            model="local-chat-completions" if chat else "local-completions",
            model_args=harness_model_args(config, concurrency, likelihood),
            tasks=list(spec.tasks),
            num_fewshot=spec.num_fewshot,
            limit=spec.limit,
            task_manager=manager,
            apply_chat_template=chat,
            log_samples=False,
            bootstrap_iters=0,
        )
    results = output["results"] if output else {}
    directions = (output or {}).get("higher_is_better") or {}
    every = scoring.lm_eval_scores(results)
    higher = scoring.lm_eval_scores(results, directions)
    return higher, {name: value for name, value in every.items() if name not in higher}


def task_kinds(manager: Any, tasks: list[str]) -> dict[str, str]:
    """Each task's kind (`output_type`: generate_until, loglikelihood, multiple_choice, ...), groups and
    tags expanded to their tasks."""
    loaded = manager.load(list(tasks))["tasks"]
    return {name: str(task.get_config("output_type")) for name, task in loaded.items()}


def check_task_kinds(kinds: dict[str, str], chat: bool, tokenizer: str | None) -> bool:
    """Whether log-likelihood tasks are among `kinds`; raises naming the field when the protocol or the
    missing tokenizer cannot score them."""
    likelihood = sorted(name for name, kind in kinds.items() if kind not in CHAT_OUTPUT_TYPES)
    if likelihood and chat:
        raise ValueError(
            f"{LM_EVAL}.tasks: {likelihood} are scored by log-likelihood "
            f"({', '.join(sorted({kinds[n] for n in likelihood}))}), which a chat API cannot return: "
            "set protocol openai-completions (an engine that returns prompt log-probabilities), or "
            "choose generate_until tasks"
        )
    if likelihood and tokenizer is None:
        raise ValueError(
            f"{LM_EVAL}.tasks: {likelihood} are scored by log-likelihood, which needs the model's tokenizer "
            "to find where the prompt ends: set tokenizer"
        )
    return bool(likelihood)


def check_prompt_logprobs(config: BenchmarkRuntimeConfig) -> None:
    """Ask the target once for the log-probabilities of a prompt's tokens (`echo` with `logprobs`, what
    the harness's log-likelihood requests need); raises naming the field when it returns none."""
    headers = {"Authorization": f"Bearer {key}"} if (key := api_key(config)) else {}
    if config.target_host:
        headers["Host"] = config.target_host
    body = {"model": config.model, "prompt": "Hello world", "max_tokens": 1, "temperature": 0,
            "logprobs": 1, "echo": True}  # fmt: skip
    response = httpx.post(
        f"{config.target_url.rstrip('/')}/v1/completions",
        json=body,
        headers=headers,
        timeout=config.load.request_timeout_seconds,
    )
    logprobs = None
    if response.is_success:
        choices = response.json().get("choices") or [{}]
        logprobs = (choices[0].get("logprobs") or {}).get("token_logprobs")
    if not logprobs:
        raise ValueError(
            f"{LM_EVAL}.tasks: log-likelihood tasks need the log-probabilities of the prompt's tokens "
            f"(/v1/completions with echo and logprobs), and {config.target_url} returned none "
            f"(HTTP {response.status_code}): run generate_until tasks against this engine"
        )


def harness_model_args(config: BenchmarkRuntimeConfig, concurrency: int, likelihood: bool) -> dict[str, Any]:
    """Arguments of the harness's OpenAI client for the target."""
    chat = config.protocol is Protocol.OPENAI_CHAT
    path = "/v1/chat/completions" if chat else "/v1/completions"
    header = {"Authorization": f"Bearer {api_key(config) or ''}"}
    if config.target_host:
        header["Host"] = config.target_host
    args: dict[str, Any] = {
        "model": config.model,
        "base_url": f"{config.target_url.rstrip('/')}{path}",
        "num_concurrent": concurrency,
        "tokenized_requests": False,
        "header": header,
        "timeout": int(config.load.request_timeout_seconds),
    }
    if likelihood:
        args |= {"tokenizer_backend": "huggingface", "tokenizer": config.tokenizer}
    else:
        args["tokenizer_backend"] = None
    return args
