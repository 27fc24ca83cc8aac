"""Triton's KServe v2 protocol for TensorRT-LLM models: gRPC through `tritonclient` (decoupled
streaming with `stream_infer`), HTTP through Triton's `generate_stream` extension (server-sent
events; `tritonclient.http` has no streaming) or `tritonclient.http` inference when not streaming.

KServe v2 responses carry no token usage, so output tokens are counted afterwards with the
model's tokenizer (or one per streamed response without one); results say which.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
from modelfleet_api.benchmark import KServeSettings
from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord

FINAL_RESPONSE = "triton_final_response"
READ_BUFFER_BYTES = 1 << 20


class KServeClient(ProtocolClient):
    def __init__(
        self,
        url: str,
        model: str,
        *,
        grpc: bool,
        settings: KServeSettings,
        timeout_seconds: float = 600.0,
        max_connections: int = 1024,
    ) -> None:
        self.model, self.grpc, self.settings, self.timeout = model, grpc, settings, timeout_seconds
        address = url.split("://", 1)[-1].rstrip("/")
        if grpc:
            import tritonclient.grpc.aio as grpcclient

            self.grpc_client = grpcclient.InferenceServerClient(address)
        elif settings.streaming:
            self.stream_url = f"{url.rstrip('/')}/v2/models/{model}/generate_stream"
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=max_connections),
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                read_bufsize=READ_BUFFER_BYTES,
            )
        else:
            import tritonclient.http.aio as httpclient

            self.http_client = httpclient.InferenceServerClient(address, conn_limit=max_connections)

    def _inputs(self, module: Any, request: BenchRequest) -> list[Any]:
        names = self.settings
        tensors = [
            (names.text_input, np.array([[request.prompt.encode()]], dtype=object), "BYTES"),
            (names.max_tokens, np.array([[request.max_tokens]], dtype=np.int32), "INT32"),
            (names.stream, np.array([[names.streaming]], dtype=bool), "BOOL"),
        ]
        inputs = []
        for name, value, datatype in tensors:
            tensor = module.InferInput(name, list(value.shape), datatype)
            if self.grpc:
                tensor.set_data_from_numpy(value)
            else:  # JSON tensors: prompts are small, and any KServe v2 server reads them
                tensor.set_data_from_numpy(value, binary_data=False)
            inputs.append(tensor)
        return inputs

    def _record_text(self, record: RequestRecord, output: np.ndarray | None) -> None:
        if output is None:
            return
        # BYTES tensors come back as bytes (binary) or str (JSON)
        values = output.reshape(-1)
        pieces = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values)
        text = "".join(pieces)
        if text:
            record.chunk_times.append(time.perf_counter())
            record.text_parts.append(text)

    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        record.start = time.perf_counter()
        try:
            if self.grpc:
                await self._send_grpc(request, record)
            elif self.settings.streaming:
                await self._send_http_stream(request, record)
            else:
                await self._send_http(request, record)
        except Exception as error:
            record.error = f"{type(error).__name__}: {error}"
        finally:
            record.end = time.perf_counter()
        if record.error is None and not record.chunk_times:
            record.error = "no generated text in the response"

    async def _send_grpc(self, request: BenchRequest, record: RequestRecord) -> None:
        import tritonclient.grpc.aio as grpcclient

        async def one_request() -> AsyncIterator[dict[str, Any]]:
            # One request, then half-close: Triton ends the stream after the request's last response
            # (the asyncio client cannot ask for the empty final response; `triton_*` is reserved).
            yield {"model_name": self.model, "inputs": self._inputs(grpcclient, request)}

        async for result, error in self.grpc_client.stream_infer(one_request(), stream_timeout=self.timeout):
            if error is not None:
                record.error = f"InferenceServerException: {error}"
                return
            self._record_text(record, result.as_numpy(self.settings.text_output))
            parameters = result.get_response().parameters
            if FINAL_RESPONSE in parameters and parameters[FINAL_RESPONSE].bool_param:
                return

    async def _send_http_stream(self, request: BenchRequest, record: RequestRecord) -> None:
        names = self.settings
        body = {names.text_input: request.prompt, names.max_tokens: request.max_tokens, names.stream: True}
        async with self.session.post(self.stream_url, json=body) as response:
            if response.status != 200:
                record.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                return
            async for line in response.content:
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if "error" in event:
                        record.error = f"Triton: {event['error']}"
                        return
                    piece = event.get(names.text_output)
                    if piece:
                        record.chunk_times.append(time.perf_counter())
                        record.text_parts.append(piece)

    async def _send_http(self, request: BenchRequest, record: RequestRecord) -> None:
        import tritonclient.http.aio as httpclient

        outputs = [httpclient.InferRequestedOutput(self.settings.text_output, binary_data=False)]
        result = await self.http_client.infer(self.model, self._inputs(httpclient, request), outputs=outputs)
        self._record_text(record, result.as_numpy(self.settings.text_output))

    async def close(self) -> None:
        if self.grpc:
            await self.grpc_client.close()
        elif self.settings.streaming:
            await self.session.close()
        else:
            await self.http_client.close()
