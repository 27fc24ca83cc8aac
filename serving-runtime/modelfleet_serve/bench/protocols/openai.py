"""OpenAI-compatible HTTP (chat and completions), streamed over server-sent events, with aiohttp.

aiohttp rather than the `openai` SDK: the SDK builds pydantic objects for every chunk, which costs
more CPU per token than the measurement can afford at high rates; here a chunk is one `json.loads`.
"""

from __future__ import annotations

import json
import time

import aiohttp
from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord

READ_BUFFER_BYTES = 1 << 20


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
    ) -> None:
        self.url = base_url.rstrip("/") + ("/v1/chat/completions" if chat else "/v1/completions")
        self.model, self.chat, self.ignore_eos = model, chat, ignore_eos
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            headers=headers,
            read_bufsize=READ_BUFFER_BYTES,
        )

    def body(self, request: BenchRequest) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
        }
        if self.chat:
            body["messages"] = [{"role": "user", "content": request.prompt}]
        else:
            body["prompt"] = request.prompt
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        payload = self.body(request)
        chat = self.chat
        clock = time.perf_counter
        record.start = clock()
        try:
            async with self.session.post(self.url, json=payload) as response:
                if response.status != 200:
                    record.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                    return
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    now = clock()
                    chunk = json.loads(data)
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                        if piece:
                            record.chunk_times.append(now)
                            record.text_parts.append(piece)
                    usage = chunk.get("usage")
                    if usage:
                        record.output_tokens = usage.get("completion_tokens")
                        record.prompt_tokens = usage.get("prompt_tokens")
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            record.error = f"{type(error).__name__}: {error}"
        finally:
            record.end = clock()
        if record.error is None and not record.chunk_times:
            record.error = "no generated text in the response"

    async def close(self) -> None:
        await self.session.close()
