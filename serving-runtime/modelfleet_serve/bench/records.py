"""What one request is and what the client observed about it.

Observations are raw perf_counter timestamps (seconds, CLOCK_MONOTONIC: one clock for every
process on the host, so worker processes' records can be pooled); metrics are derived afterwards,
off the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Message = tuple[str, str]
"""A chat message: (role, content)."""


@dataclass(slots=True, frozen=True)
class BenchRequest:
    prompt: str
    """The prompt text (for chat, the user turn sent last)."""
    max_tokens: int
    """Output tokens requested."""
    prompt_tokens: int | None = None
    """Prompt length in tokens when the workload knows it."""
    history: tuple[Message, ...] = ()
    """Chat messages sent before `prompt` (earlier turns of a conversation)."""


@dataclass(slots=True, frozen=True)
class Session:
    """What one user sends in a row: a conversation's turns (one turn without multi-turn), each turn
    after the reply to the previous one plus its think time. Later turns are sent with the
    conversation so far (`history` of the earlier user turns and the server's replies)."""

    turns: tuple[BenchRequest, ...]
    think_seconds: tuple[float, ...] = ()
    """Wait before turn k+1 after the reply to turn k (one fewer than `turns`)."""
    offset: float | None = None
    """Trace replay: when the session's first request was sent, seconds after the trace began."""


@dataclass(slots=True)
class RequestRecord:
    index: int
    warmup: bool
    scheduled: float
    """When the load pattern wanted the request sent: its open-loop arrival, or the previous reply's
    end (plus the think time) of the same user."""
    session: int = 0
    """The session (conversation) the request belongs to, numbered in the order sessions start."""
    turn: int = 0
    """Its turn in the session, from 0."""
    queued: bool = False
    """Open loop: it waited for a free slot (`maxInFlight` requests were outstanding)."""
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
    cached_tokens: int | None = None
    """Prompt tokens the server says it served from its prefix cache (`usage.prompt_tokens_details`)."""
    token_source: str = "usage"
    """`usage` (server-reported), `tokenizer` (counted by the client) or `chunks` (one per chunk)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return "".join(self.text_parts)
