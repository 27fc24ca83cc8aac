"""Turn a `Workload` into what the users send: sessions (conversations; one request each without
`multiTurn`) from a dataset, a trace, or synthetic prompts of sampled token lengths (with shared
prefixes for `sharedPrefix`), reproducible from the seed.

Sessions are drawn in order, cycling through a dataset or trace when the point needs more: the first
`warmup` sessions give the warm-up requests (their first turns), the next ones the measured requests,
the last session cut so that they hold exactly the number asked for.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
from modelfleet_api.benchmark import (
    Distribution,
    LengthDistribution,
    MultiTurn,
    PromptsFile,
    SharedPrefixWorkload,
    SyntheticWorkload,
    ThinkTime,
    TraceReplay,
    Workload,
)

from modelfleet_serve.bench import datasets
from modelfleet_serve.bench.records import BenchRequest, Session


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
    lengths: np.ndarray = np.clip(values, spec.min, spec.max).astype(int)
    return lengths


def sample_think_times(spec: ThinkTime, count: int, rng: np.random.Generator) -> tuple[float, ...]:
    if spec.distribution is Distribution.CONSTANT:
        values = np.full(count, spec.mean_seconds)
    elif spec.distribution is Distribution.UNIFORM:
        values = rng.uniform(spec.min_seconds, spec.max_seconds, size=count)
    else:
        values = rng.normal(spec.mean_seconds, spec.stddev_seconds, size=count)
    return tuple(float(v) for v in np.clip(values, spec.min_seconds, spec.max_seconds))


def load_tokenizer(name_or_path: str | None) -> Tokenizer | None:
    if name_or_path is None:
        return None
    from transformers import AutoTokenizer

    # transformers types decode for batches too (str | list[str]); given one list of ids it gives a str
    return cast(Tokenizer, AutoTokenizer.from_pretrained(name_or_path))


@dataclass(frozen=True)
class Requests:
    """What a load point sends."""

    warmup: list[BenchRequest]
    measured: list[Session]
    """Sessions holding exactly the measured request count."""


def build(workload: Workload, warmup: int, count: int, tokenizer: Tokenizer | None) -> Requests:
    """`warmup` warm-up requests, then sessions holding `count` requests."""
    sessions = session_source(workload, tokenizer)
    warm = [next(sessions).turns[0] for _ in range(warmup)]
    measured: list[Session] = []
    remaining = count
    while remaining > 0:
        session = next(sessions)
        if len(session.turns) > remaining:
            session = Session(
                session.turns[:remaining], session.think_seconds[: remaining - 1], session.offset
            )
        measured.append(session)
        remaining -= len(session.turns)
    return Requests(warm, measured)


def session_source(workload: Workload, tokenizer: Tokenizer | None) -> Iterator[Session]:
    """Endless sessions of the workload, in order (a dataset or trace starts over at its end)."""
    rng = np.random.default_rng(workload.seed)
    if workload.prompts_file is not None:
        return file_sessions(workload.prompts_file, workload.multi_turn, rng, tokenizer)
    if workload.trace is not None:
        return trace_sessions(workload.trace)
    if tokenizer is None:
        raise ValueError(
            "tokenizer: synthetic and shared-prefix workloads need the model's tokenizer to make prompts "
            "of given lengths"
        )
    random_text = RandomText(tokenizer, rng)
    if workload.shared_prefix is not None:
        return shared_prefix_sessions(workload.shared_prefix, random_text, rng)
    assert workload.synthetic is not None  # the model guarantees exactly one source
    return synthetic_sessions(workload.synthetic, workload.multi_turn, random_text, rng)


class RandomText:
    """Text of a given token length, made of random vocabulary tokens (special tokens left out)."""

    def __init__(self, tokenizer: Tokenizer, rng: np.random.Generator) -> None:
        special = set(getattr(tokenizer, "all_special_ids", []))
        self.vocabulary = np.array([i for i in range(len(tokenizer)) if i not in special])
        self.tokenizer, self.rng = tokenizer, rng

    def __call__(self, tokens: int) -> str:
        return self.tokenizer.decode(self.rng.choice(self.vocabulary, size=tokens).tolist())


def synthetic_sessions(
    spec: SyntheticWorkload, multi_turn: MultiTurn | None, text: RandomText, rng: np.random.Generator
) -> Iterator[Session]:
    turns = multi_turn.turns if multi_turn else 1
    while True:
        inputs = sample_lengths(spec.input_tokens, turns, rng)
        outputs = sample_lengths(spec.output_tokens, turns, rng)
        requests = tuple(
            BenchRequest(prompt=text(int(n)), max_tokens=int(m), prompt_tokens=int(n))
            for n, m in zip(inputs, outputs, strict=True)
        )
        think = sample_think_times(multi_turn.think_time, turns - 1, rng) if multi_turn else ()
        yield Session(requests, think)


def shared_prefix_sessions(
    spec: SharedPrefixWorkload, text: RandomText, rng: np.random.Generator
) -> Iterator[Session]:
    """The N x M prompts `prefix + suffix` in a seeded random order, over and over (the same order)."""
    prefixes = [text(spec.prefix_tokens) for _ in range(spec.prefixes)]
    count = spec.prefixes * spec.suffixes_per_prefix
    suffixes = sample_lengths(spec.suffix_tokens, count, rng)
    outputs = sample_lengths(spec.output_tokens, count, rng)
    prompts = [
        BenchRequest(
            prompt=prefixes[i // spec.suffixes_per_prefix] + text(int(suffixes[i])),
            max_tokens=int(outputs[i]),
            prompt_tokens=spec.prefix_tokens + int(suffixes[i]),
        )
        for i in range(count)
    ]
    order = rng.permutation(count)
    return itertools.cycle([Session((prompts[i],)) for i in order])


def file_sessions(
    spec: PromptsFile, multi_turn: MultiTurn | None, rng: np.random.Generator, tokenizer: Tokenizer | None
) -> Iterator[Session]:
    field = "workload.promptsFile"
    found = datasets.read_file(
        spec.uri, f"{field}.uri", lambda path: datasets.conversations(path, field, spec.max_prompts)
    )
    max_turns = multi_turn.turns if multi_turn else 1
    output_length = _output_lengths(spec, rng, tokenizer)
    for turns in itertools.cycle(found):
        chosen = turns[:max_turns]
        requests = tuple(BenchRequest(prompt=t.prompt, max_tokens=output_length(t)) for t in chosen)
        think = sample_think_times(multi_turn.think_time, len(chosen) - 1, rng) if multi_turn else ()
        yield Session(requests, think)


def _output_lengths(
    spec: PromptsFile, rng: np.random.Generator, tokenizer: Tokenizer | None
) -> Callable[[datasets.Turn], int]:
    """How many tokens to ask for after a turn: drawn from `outputTokens`, else its reference reply's."""
    if spec.output_tokens is not None:
        lengths = spec.output_tokens
        return lambda _turn: int(sample_lengths(lengths, 1, rng)[0])
    if tokenizer is None:
        raise ValueError(
            "tokenizer: needed to size outputs from the reference replies "
            "(or set workload.promptsFile.outputTokens)"
        )

    def reference_length(turn: datasets.Turn) -> int:
        if turn.reference is None:
            raise ValueError(
                f"workload.promptsFile: the prompt {turn.prompt[:60]!r} has no reference reply to size "
                "its output: set workload.promptsFile.outputTokens"
            )
        return max(1, len(tokenizer.encode(turn.reference, add_special_tokens=False)))

    return reference_length


def trace_sessions(spec: TraceReplay) -> Iterator[Session]:
    """The trace's requests, one session each, their offsets continuing where the trace ended when it
    starts over (one mean gap after its last request)."""
    field = "workload.trace"
    traced = datasets.read_file(
        spec.uri, f"{field}.uri", lambda path: datasets.trace(path, field, spec.max_requests)
    )
    span = traced[-1].offset or 0.0
    period = span + (span / (len(traced) - 1) if len(traced) > 1 else 1.0)
    for cycle in itertools.count():
        for request in traced:
            offset = None if request.offset is None else request.offset + cycle * period
            turn = BenchRequest(request.prompt, request.max_tokens, request.prompt_tokens, request.history)
            yield Session((turn,), (), offset)
