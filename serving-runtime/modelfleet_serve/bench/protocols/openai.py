"""OpenAI-compatible HTTP (chat and completions), streamed over server-sent events.

The request goes through `http1` (encoded before the clock starts, arrivals stamped by the kernel);
the events are parsed after the response ended, so parsing never delays a timestamp. An event's
arrival is that of the read that completed its `data:` line. The `openai` SDK is not used: it builds
pydantic objects per chunk, more CPU per token than the measurement can afford at high rates.
"""

from __future__ import annotations

import json

from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.protocols.http1 import Http1Pool, with_body
from modelfleet_serve.bench.protocols.pool import Response
from modelfleet_serve.bench.protocols.recorded import exchange_into, status_error
from modelfleet_serve.bench.protocols.sse import sse_json
from modelfleet_serve.bench.records import BenchRequest, RequestRecord


class OpenAIClient(ProtocolClient):
    def __init__(
        self,
        base_url: str,
        model: str,
        chat: bool,
        *,
        api_key: str | None = None,
        max_connections: int = 1024,
        timeout_seconds: float = 600.0,
        ignore_eos: bool = False,
        host: str | None = None,
    ) -> None:
        self.pool = Http1Pool(base_url, max_connections, timeout_seconds, host)
        self.path = "/v1/chat/completions" if chat else "/v1/completions"
        self.model, self.chat, self.ignore_eos = model, chat, ignore_eos
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.head = self.pool.request_head("POST", self.path, headers)

    def body(self, request: BenchRequest) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
        }
        if self.chat:
            messages = [{"role": role, "content": content} for role, content in request.history]
            messages.append({"role": "user", "content": request.prompt})
            body["messages"] = messages
        elif request.history:
            raise ValueError("a conversation (chat messages) is sent with protocol openai-chat only")
        else:
            body["prompt"] = request.prompt
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        encoded = with_body(self.head, json.dumps(self.body(request)).encode())
        await exchange_into(self.pool, encoded, record, self.parse)

    def parse(self, response: Response, record: RequestRecord) -> None:
        record.error = status_error(response)
        if record.error:
            return
        chat = self.chat
        for arrived, chunk in sse_json(response.pieces, b"[DONE]"):
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                if piece:
                    record.chunk_times.append(arrived)
                    record.text_parts.append(piece)
            usage = chunk.get("usage")
            if usage:
                record.output_tokens = usage.get("completion_tokens")
                record.prompt_tokens = usage.get("prompt_tokens")
                details = usage.get("prompt_tokens_details")
                if details:
                    record.cached_tokens = details.get("cached_tokens")

    async def close(self) -> None:
        await self.pool.close()
