"""Turn a `Workload` into concrete requests: prompts from a JSONL file or synthetic prompts of
sampled token lengths, reproducible from the seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from modelfleet_api.benchmark import (
    Distribution,
    LengthDistribution,
    PromptsFile,
    SyntheticWorkload,
    Workload,
)

from modelfleet_serve.bench.records import BenchRequest


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def __len__(self) -> int: ...


def sample_lengths(spec: LengthDistribution, count: int, rng: np.random.Generator) -> np.ndarray:
    if spec.distribution is Distribution.CONSTANT:
        values = np.full(count, spec.mean)
    elif spec.distribution is Distribution.UNIFORM:
        values = rng.integers(spec.min, spec.max, size=count, endpoint=True)
    else:
        values = np.rint(rng.normal(spec.mean, spec.stddev, size=count))
    return np.clip(values, spec.min, spec.max).astype(int)


def load_tokenizer(name_or_path: str | None) -> Tokenizer | None:
    if name_or_path is None:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)  # type: ignore[no-any-return]


def build_requests(workload: Workload, count: int, tokenizer: Tokenizer | None) -> list[BenchRequest]:
    """`count` requests (the prompts are reused in order if the file has fewer)."""
    rng = np.random.default_rng(workload.seed)
    if workload.synthetic is not None:
        return synthetic_requests(workload.synthetic, count, rng, tokenizer)
    assert workload.prompts_file is not None  # the model guarantees exactly one
    return file_requests(workload.prompts_file, count, rng, tokenizer)


def synthetic_requests(
    spec: SyntheticWorkload, count: int, rng: np.random.Generator, tokenizer: Tokenizer | None
) -> list[BenchRequest]:
    if tokenizer is None:
        raise ValueError(
            "tokenizer: synthetic workloads need the model's tokenizer to make prompts of given lengths"
        )
    inputs = sample_lengths(spec.input_tokens, count, rng)
    outputs = sample_lengths(spec.output_tokens, count, rng)
    special = set(getattr(tokenizer, "all_special_ids", []))
    vocabulary = np.array([i for i in range(len(tokenizer)) if i not in special])
    requests = []
    for length, max_tokens in zip(inputs, outputs, strict=True):
        ids = rng.choice(vocabulary, size=int(length)).tolist()
        requests.append(
            BenchRequest(prompt=tokenizer.decode(ids), max_tokens=int(max_tokens), prompt_tokens=int(length))
        )
    return requests


def first_turns(record: dict[str, Any]) -> tuple[str, str | None]:
    """(first user turn, the assistant reply after it) of a ShareGPT or OpenAI-messages record."""
    if "conversations" in record:
        turns = [(t.get("from"), t.get("value")) for t in record["conversations"]]
        user, assistant = {"human", "user"}, {"gpt", "assistant", "chatgpt", "bing", "bard"}
    elif "messages" in record:
        turns = [(t.get("role"), t.get("content")) for t in record["messages"]]
        user, assistant = {"user"}, {"assistant"}
    else:
        raise ValueError("has neither 'conversations' (ShareGPT) nor 'messages' (OpenAI)")
    for i, (role, text) in enumerate(turns):
        if role in user and text:
            reply = next((t for r, t in turns[i + 1 :] if r in assistant), None)
            return text, reply
    raise ValueError("has no user turn")


def file_requests(
    spec: PromptsFile, count: int, rng: np.random.Generator, tokenizer: Tokenizer | None
) -> list[BenchRequest]:
    path = Path(spec.uri.removeprefix("file://"))
    pairs: list[tuple[str, str | None]] = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                pairs.append(first_turns(json.loads(line)))
            except ValueError as error:
                raise ValueError(f"workload.promptsFile: {path} line {number}: {error}") from None
            if spec.max_prompts is not None and len(pairs) >= spec.max_prompts:
                break
    if not pairs:
        raise ValueError(f"workload.promptsFile: {path} holds no prompts")
    chosen = [pairs[i % len(pairs)] for i in range(count)]
    if spec.output_tokens is not None:
        outputs = sample_lengths(spec.output_tokens, count, rng).tolist()
    else:
        if tokenizer is None:
            raise ValueError(
                "tokenizer: needed to size outputs from the reference replies "
                "(or set workload.promptsFile.outputTokens)"
            )
        outputs = [
            max(1, len(tokenizer.encode(reply or "", add_special_tokens=False))) for _, reply in chosen
        ]
    return [
        BenchRequest(prompt=prompt, max_tokens=int(n)) for (prompt, _), n in zip(chosen, outputs, strict=True)
    ]
