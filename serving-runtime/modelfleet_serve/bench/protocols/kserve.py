"""Triton's KServe v2 protocol over HTTP for TensorRT-LLM models: streamed through Triton's
`generate_stream` extension (server-sent events, one per response of the decoupled model), or one
`/v2/models/<model>/infer` call with JSON tensors when not streaming.

Timed like the OpenAI adapter: through `http1` (request encoded before the clock starts, arrivals
stamped by the kernel), parsed after the response ended. `tritonclient.http` is not used: it builds
the request after being called and times nothing itself, and it has no streaming.
KServe v2 responses carry no token usage, so output tokens are counted afterwards with the model's
tokenizer (or one per streamed response without one); results say which.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from modelfleet_api.benchmark import KServeSettings
from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.protocols.http1 import Http1Pool, with_body
from modelfleet_serve.bench.protocols.pool import Response
from modelfleet_serve.bench.protocols.recorded import exchange_into, status_error
from modelfleet_serve.bench.protocols.sse import sse_json
from modelfleet_serve.bench.records import BenchRequest, RequestRecord


def tensor_text(value: Any) -> str:
    """The text of a BYTES tensor in JSON form: a string, or a (nested) list of strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(tensor_text(item) for item in value)
    raise ValueError(f"a BYTES tensor holds strings, got {type(value).__name__}")


class KServeHttpClient(ProtocolClient):
    def __init__(
        self,
        base_url: str,
        model: str,
        settings: KServeSettings,
        *,
        max_connections: int = 1024,
        timeout_seconds: float = 600.0,
        host: str | None = None,
    ) -> None:
        self.pool = Http1Pool(base_url, max_connections, timeout_seconds, host)
        self.names = settings
        endpoint = "generate_stream" if settings.streaming else "infer"
        headers = {"Content-Type": "application/json"}
        if settings.streaming:
            headers["Accept"] = "text/event-stream"
        self.head = self.pool.request_head("POST", f"/v2/models/{quote(model, safe='')}/{endpoint}", headers)

    def body(self, request: BenchRequest) -> dict[str, object]:
        names = self.names
        if names.streaming:  # generate_stream takes one JSON value per input tensor
            return {
                names.text_input: request.prompt,
                names.max_tokens: request.max_tokens,
                names.stream: True,
            }
        return {
            "inputs": [
                {"name": names.text_input, "datatype": "BYTES", "shape": [1, 1], "data": [request.prompt]},
                {
                    "name": names.max_tokens,
                    "datatype": "INT32",
                    "shape": [1, 1],
                    "data": [request.max_tokens],
                },
                {"name": names.stream, "datatype": "BOOL", "shape": [1, 1], "data": [False]},
            ],
            "outputs": [{"name": names.text_output, "parameters": {"binary_data": False}}],
        }

    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        encoded = with_body(self.head, json.dumps(self.body(request)).encode())
        parse = self.parse_stream if self.names.streaming else self.parse_infer
        await exchange_into(self.pool, encoded, record, parse)

    def parse_stream(self, response: Response, record: RequestRecord) -> None:
        record.error = status_error(response)
        if record.error:
            return
        name = self.names.text_output
        for arrived, event in sse_json(response.pieces):
            if "error" in event:
                record.error = f"Triton: {event['error']}"
                return
            piece = tensor_text(event.get(name) or "")
            if piece:
                record.chunk_times.append(arrived)
                record.text_parts.append(piece)

    def parse_infer(self, response: Response, record: RequestRecord) -> None:
        """The whole text arrives with the response's last byte: TTFT equals E2E."""
        record.error = status_error(response)
        if record.error:
            return
        name = self.names.text_output
        outputs = json.loads(response.body).get("outputs") or []
        output = next((o for o in outputs if o.get("name") == name), None)
        if output is None:
            found = [o.get("name") for o in outputs]
            raise ValueError(f"no output tensor {name!r} in the response (kserve.textOutput; it has {found})")
        text = tensor_text(output.get("data") or [])
        if text:
            record.chunk_times.append(response.end)
            record.text_parts.append(text)

    async def close(self) -> None:
        await self.pool.close()
