"""What one request is and what the client observed about it.

Observations are raw perf_counter timestamps (seconds, CLOCK_MONOTONIC: one clock for every
process on the host, so worker processes' records can be pooled); metrics are derived afterwards,
off the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class BenchRequest:
    prompt: str
    """The prompt text (the first user turn for chat)."""
    max_tokens: int
    """Output tokens requested."""
    prompt_tokens: int | None = None
    """Prompt length in tokens when the workload knows it."""


@dataclass(slots=True)
class RequestRecord:
    index: int
    warmup: bool
    scheduled: float
    """When the load pattern wanted the request sent."""
    start: float = 0.0
    """When the client began sending it."""
    chunk_times: list[float] = field(default_factory=list)
    """Arrival time of every streamed chunk that carried generated text."""
    text_parts: list[str] = field(default_factory=list)
    end: float = 0.0
    """When the response was complete (or the error happened)."""
    output_tokens: int | None = None
    """Generated tokens as reported by the server (usage), else filled in from the tokenizer."""
    prompt_tokens: int | None = None
    token_source: str = "usage"
    """`usage` (server-reported), `tokenizer` (counted by the client) or `chunks` (one per chunk)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return "".join(self.text_parts)
