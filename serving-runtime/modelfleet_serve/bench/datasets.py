"""Reading workload files: conversation and prompt datasets (`promptsFile`) and request traces
(`trace`), from a local path or Azure Blob.

A dataset is JSONL (one record per line) or one JSON array of records, the layout the published
ShareGPT files use. A record is a ShareGPT conversation (`conversations: [{from, value}]`), an
OpenAI-style one (`messages: [{role, content}]`) or a plain prompt (`prompt` or `text`). A trace is the
JSONL `modelfleet-bench` writes per point (`trace.jsonl`, see `results.TRACE_JSONL`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelfleet_serve import blob
from modelfleet_serve.bench.records import Message

T = TypeVar("T")

USER_ROLES = frozenset({"human", "user"})
ASSISTANT_ROLES = frozenset({"gpt", "assistant", "chatgpt", "bing", "bard", "model"})


def local_file(uri: str, field: str, workdir: Path) -> Path:
    """The file a workload URI names, downloaded into ``workdir`` first when it is an Azure Blob URI."""
    location = blob.parse_blob_uri(uri, field)
    if location is None:
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise ValueError(f"{field}: {uri} is not a file here (a local path, or an Azure Blob URI)")
        return path
    target = workdir / Path(location.prefix).name
    container = blob.container_client(location)
    with target.open("wb") as sink:
        container.download_blob(location.prefix, max_concurrency=4).readinto(sink)
    return target


def read_file(uri: str, field: str, read: Callable[[Path], T]) -> T:
    """``read`` of the file a workload URI names; a blob is downloaded into a temporary directory that is
    removed once it has been read."""
    with tempfile.TemporaryDirectory(prefix="modelfleet-bench-") as workdir:
        return read(local_file(uri, field, Path(workdir)))


def records(path: Path, field: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) of every record of a JSON array or JSONL file, `where` naming it in errors."""
    with path.open() as source:
        first = source.read(1)
        while first.isspace():
            first = source.read(1)
        source.seek(0)
        if first == "[":
            try:
                document = json.load(source)
            except json.JSONDecodeError as error:
                raise ValueError(f"{field}: {path} is not valid JSON: {error}") from None
            for number, record in enumerate(document):
                yield f"{path} record {number}", _object(record, f"{field}: {path} record {number}")
            return
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{field}: {where}: {error}") from None
            yield where, _object(record, f"{field}: {where}")


def _object(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record is a JSON object, got {type(record).__name__}")
    return record


@dataclass(frozen=True)
class Turn:
    """A user turn and, when the dataset has one, the reply it got."""

    prompt: str
    reference: str | None


def conversation(record: dict[str, Any]) -> list[Turn]:
    """The user turns of a ShareGPT, OpenAI-messages or plain-prompt record, each with the assistant
    reply that follows it (system and other roles are left out; consecutive user turns are joined)."""
    if "conversations" in record:
        messages = [(t.get("from"), t.get("value")) for t in record["conversations"]]
    elif "messages" in record:
        messages = [(t.get("role"), t.get("content")) for t in record["messages"]]
    elif isinstance(record.get("prompt") or record.get("text"), str):
        return [Turn(record.get("prompt") or record["text"], None)]
    else:
        raise ValueError("has none of 'conversations' (ShareGPT), 'messages' (OpenAI), 'prompt', 'text'")
    turns: list[Turn] = []
    for role, text in messages:
        if not isinstance(text, str) or not text:
            continue
        if role in USER_ROLES:
            if turns and turns[-1].reference is None:
                turns[-1] = Turn(f"{turns[-1].prompt}\n{text}", None)
            else:
                turns.append(Turn(text, None))
        elif role in ASSISTANT_ROLES and turns and turns[-1].reference is None:
            turns[-1] = Turn(turns[-1].prompt, text)
    if not turns:
        raise ValueError("has no user turn")
    return turns


def conversations(path: Path, field: str, limit: int | None) -> list[list[Turn]]:
    """Every record's turns, at most `limit` records."""
    found: list[list[Turn]] = []
    for where, record in records(path, field):
        try:
            found.append(conversation(record))
        except ValueError as error:
            raise ValueError(f"{field}: {where}: {error}") from None
        if limit is not None and len(found) >= limit:
            break
    if not found:
        raise ValueError(f"{field}: {path} holds no prompts")
    return found


@dataclass(frozen=True)
class TracedRequest:
    """One request of a trace, as it was sent."""

    offset: float | None
    """Seconds after the trace's first request (None: the trace has no times)."""
    prompt: str
    history: tuple[Message, ...]
    max_tokens: int
    prompt_tokens: int | None


def traced_request(record: dict[str, Any]) -> TracedRequest:
    max_tokens = record.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens: a positive integer is required, got {max_tokens!r}")
    offset = record.get("offset_s")
    if offset is not None and (not isinstance(offset, int | float) or offset < 0):
        raise ValueError(f"offset_s: seconds after the first request (>= 0), got {offset!r}")
    if "messages" in record:
        messages = [(m.get("role"), m.get("content")) for m in record["messages"]]
        if (
            not messages
            or messages[-1][0] != "user"
            or not all(isinstance(r, str) and isinstance(c, str) for r, c in messages)
        ):
            raise ValueError("messages: a list of {role, content} strings ending with a user message")
        prompt, history = messages[-1][1], tuple(messages[:-1])
    elif isinstance(record.get("prompt"), str):
        prompt, history = record["prompt"], ()
    else:
        raise ValueError("has neither 'messages' (chat) nor 'prompt'")
    tokens = record.get("prompt_tokens")
    return TracedRequest(
        offset=None if offset is None else float(offset),
        prompt=prompt,
        history=history,
        max_tokens=max_tokens,
        prompt_tokens=tokens if isinstance(tokens, int) else None,
    )


def trace(path: Path, field: str, limit: int | None) -> list[TracedRequest]:
    """The requests of a trace in the order they were sent (by `offset_s` when every line has one)."""
    found: list[TracedRequest] = []
    for where, record in records(path, field):
        try:
            found.append(traced_request(record))
        except ValueError as error:
            raise ValueError(f"{field}: {where}: {error}") from None
        if limit is not None and len(found) >= limit:
            break
    if not found:
        raise ValueError(f"{field}: {path} holds no requests")
    if all(r.offset is not None for r in found):
        found.sort(key=lambda r: r.offset or 0.0)
        first = found[0].offset or 0.0
        found = [
            TracedRequest((r.offset or 0.0) - first, r.prompt, r.history, r.max_tokens, r.prompt_tokens)
            for r in found
        ]
    return found
