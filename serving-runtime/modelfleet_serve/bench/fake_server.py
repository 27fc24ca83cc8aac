"""A streaming OpenAI-compatible and KServe v2 (Triton) server with known, injected latencies, to
calibrate load generators.

Every request gets its first token `ttft_ms` after it arrived and each further token `itl_ms` after
the previous one, on an absolute schedule (deadlines from the arrival, so lateness never accumulates).
"Arrived" is the kernel's receive stamp of the read that completed the request (`netclock`), so the
schedule starts when the request reached the host, however late this process was scheduled to read it.
The event loop's timers wake up to about 1 ms late (epoll's millisecond timeout), and a busy host adds
more; the server does not spin to hide that (spinning starves the other streams on a small host): it
records what it did. `GET /timings` returns, per streamed request, `arrived` and `sent` (when each chunk
left for the loopback device: the kernel's transmit stamp, or where the kernel gives none the time just
before the `send` call, which is late by any preemption between the two), in perf_counter seconds
(CLOCK_MONOTONIC, shared by every process on the host): the truth a client is checked against.

Plain HTTP/1.1 with keep-alive on raw sockets (no framework: its per-request CPU would cap the rates a
load generator can be tested at). One token per chunk, one HTTP chunk per event. OpenAI: `usage` in the
last event (as vLLM with `stream_options.include_usage`). KServe v2 as Triton serves a TensorRT-LLM
model: `POST /v2/models/<model>/generate_stream` (one SSE event per token), `.../infer` (JSON tensors,
the whole text after the last token's delay), and on the same port, to a client that opens with the
HTTP/2 preface, gRPC `ModelStreamInfer` (`fake_grpc`).
`python -m modelfleet_serve.bench.fake_server --port 8000 --ttft-ms 50 --itl-ms 10`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from modelfleet_serve.bench.fake_grpc import GrpcConnection
from modelfleet_serve.bench.fake_wire import Closed, Stream, chunk, clock, read, send_json, sleep_until
from modelfleet_serve.bench.netclock import enable_rx_timestamps, enable_tx_timestamps

TIMINGS_KEPT = 100_000
MAX_REQUEST_BYTES = 1 << 24
HTTP2_PREFACE_START = b"PRI * HTTP/2.0"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
SendToken = Callable[[list[float], int], Awaitable[None]]
"""Sends token k of a response whose send times are `sent` (arguments: sent, k)."""


class BadRequest(Exception):
    """A request the fake rejects; the message names the field."""


class PrefixCache:
    """A stand-in for an engine's prefix cache, so the client's hit-rate figures can be checked: a
    prompt's "tokens" are its whitespace-separated words, cached in blocks of `block` words chained
    by hash (a block is found only after the same blocks before it), without eviction. It counts
    looked-up and found tokens under vLLM's counter names."""

    def __init__(self, block: int) -> None:
        self.block = block
        self.blocks: set[int] = set()
        self.queries = self.hits = 0

    def lookup(self, words: list[str]) -> int:
        """Cached tokens of a prompt, which is then cached in turn."""
        cached, parent, found = 0, 0, True
        for start in range(0, len(words) - self.block + 1, self.block):
            parent = hash((parent, *words[start : start + self.block]))
            if found and parent in self.blocks:
                cached += self.block
            else:
                found = False
                self.blocks.add(parent)
        self.queries += len(words)
        self.hits += cached
        return cached

    def exposition(self) -> bytes:
        return (
            "# TYPE vllm:prefix_cache_queries counter\n"
            f'vllm:prefix_cache_queries_total{{model_name="fake"}} {self.queries}\n'
            "# TYPE vllm:prefix_cache_hits counter\n"
            f'vllm:prefix_cache_hits_total{{model_name="fake"}} {self.hits}\n'
        ).encode()


class FakeServer:
    def __init__(
        self,
        ttft_ms: float,
        itl_ms: float,
        model: str = "fake",
        prefix_block: int = 0,
        prompt_tokens_details: bool = False,
        max_concurrent: int = 0,
    ) -> None:
        self.ttft, self.itl, self.model = ttft_ms / 1000.0, itl_ms / 1000.0, model
        self.timings: deque[dict[str, Any]] = deque(maxlen=TIMINGS_KEPT)
        self.cache = PrefixCache(prefix_block) if prefix_block else None
        self.prompt_tokens_details = prompt_tokens_details
        self.max_concurrent = max_concurrent
        """Completions beyond this many at once are refused with 429 (0: no limit), a stand-in for an
        engine's admission limit that makes a load search's answer exact."""
        self.in_flight = 0
        """Report cached tokens in `usage.prompt_tokens_details`, as vLLM with
        `--enable-prompt-tokens-details`."""

    async def serve(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        listener = socket.create_server((host, port), backlog=4096, reuse_port=True)
        listener.setblocking(False)
        connections: set[asyncio.Task[None]] = set()
        with listener:
            while True:
                sock, _ = await loop.sock_accept(listener)
                task = loop.create_task(self.connection(sock))
                connections.add(task)
                task.add_done_callback(connections.discard)

    async def connection(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        enable_rx_timestamps(sock)
        stream = Stream(sock, enable_tx_timestamps(sock))
        try:
            data, arrived = await read(loop, sock)
            if data.startswith(HTTP2_PREFACE_START):
                await GrpcConnection(self, loop, sock, stream).run(data, arrived)
                return
            buffer = bytearray(data)
            while True:
                while (request := _take_request(buffer)) is None:
                    data, arrived = await read(loop, sock)
                    buffer += data
                await self.respond(loop, stream, arrived, *request)
        except (Closed, ConnectionError):
            pass
        finally:
            sock.close()

    async def pace(self, arrived: float, tokens: int, send: SendToken) -> list[float]:
        """Send `tokens` tokens on the injected schedule from `arrived`; returns (and records in
        `timings`) when each left."""
        sent: list[float] = []
        self.timings.append({"arrived": arrived, "sent": sent})
        first_due = arrived + self.ttft
        for k in range(tokens):
            await sleep_until(first_due + k * self.itl)
            sent.append(clock())
            await send(sent, k)
        return sent

    async def respond(
        self, loop: asyncio.AbstractEventLoop, stream: Stream, arrived: float, method: str, path: str,
        body: bytes,
    ) -> None:  # fmt: skip
        route = path.split("/")
        try:
            if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
                if self.max_concurrent and self.in_flight >= self.max_concurrent:
                    error = {"error": f"over capacity: {self.max_concurrent} requests at once"}
                    await send_json(loop, stream, error, status="429 Too Many Requests")
                else:
                    self.in_flight += 1
                    try:
                        await self.complete(
                            loop, stream, arrived, json.loads(body), path.endswith("/chat/completions")
                        )
                    finally:
                        self.in_flight -= 1
            elif method == "POST" and len(route) == 5 and route[:3] == ["", "v2", "models"]:
                self.check_model(route[3])
                if route[4] == "generate_stream":
                    await self.generate_stream(loop, stream, arrived, json.loads(body))
                elif route[4] == "infer":
                    await self.infer(loop, stream, arrived, json.loads(body))
                else:
                    raise BadRequest(f"no KServe v2 endpoint {route[4]!r} (generate_stream, infer)")
            elif method == "GET" and path == "/timings":
                await send_json(loop, stream, list(self.timings))
            elif method == "GET" and path == "/metrics" and self.cache is not None:
                body = self.cache.exposition()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
                await stream.send(loop, head.encode() + body)
            elif method == "GET" and path == "/v1/models":
                model = {"id": self.model, "object": "model", "owned_by": "fake"}
                await send_json(loop, stream, {"object": "list", "data": [model]})
            elif method == "GET" and path in ("/health", "/v2/health/ready"):
                await send_json(loop, stream, {"status": "ok"})
            else:
                await send_json(loop, stream, {"error": f"no route {method} {path}"}, status="404 Not Found")
        except (BadRequest, ValueError) as error:  # json.JSONDecodeError is a ValueError
            await send_json(loop, stream, {"error": str(error)}, status="400 Bad Request")
        stream.settle()

    def check_model(self, model: str) -> None:
        if model != self.model:
            raise BadRequest(f"Request for unknown model: '{model}' is not found (serving '{self.model}')")

    async def stream_sse(
        self, loop: asyncio.AbstractEventLoop, stream: Stream, arrived: float, tokens: int, event: bytes,
        tail: bytes,
    ) -> None:  # fmt: skip
        """A chunked SSE response: `event` once per token on the schedule, then `tail`."""
        framed = chunk(event)

        async def send(sent: list[float], k: int) -> None:
            stream.stamp_into(sent, k)
            await stream.send(loop, framed)

        await stream.send(loop, SSE_HEAD)
        await self.pace(arrived, tokens, send)
        await stream.send(loop, (chunk(tail) if tail else b"") + b"0\r\n\r\n")

    async def complete(
        self, loop: asyncio.AbstractEventLoop, stream: Stream, arrived: float, body: dict[str, Any],
        chat: bool,
    ) -> None:  # fmt: skip
        tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        if chat:  # the whole conversation is the prompt, as an engine renders it
            prompt = " ".join(f"<{m['role']}> {m['content']}" for m in body["messages"])
        else:
            prompt = str(body.get("prompt", ""))
        words = prompt.split()
        cached = self.cache.lookup(words) if self.cache is not None else 0
        usage: dict[str, Any] = {
            "prompt_tokens": len(words),
            "completion_tokens": tokens,
            "total_tokens": len(words) + tokens,
        }
        if self.prompt_tokens_details:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        kind = "chat.completion" if chat else "text_completion"
        if not body.get("stream"):
            await sleep_until(arrived + self.ttft + (tokens - 1) * self.itl)
            choice = (
                {"message": {"role": "assistant", "content": "tok " * tokens}}
                if chat
                else {"text": "tok " * tokens}
            )
            document = {"id": "x", "object": kind, "model": self.model, "usage": usage,
                        "choices": [{"index": 0, "finish_reason": "length", **choice}]}  # fmt: skip
            await send_json(loop, stream, document)
            return
        delta: dict[str, object] = (
            {"index": 0, "delta": {"content": "tok "}} if chat else {"index": 0, "text": "tok "}
        )
        event = b"data: " + json.dumps({"id": "x", "object": kind + ".chunk", "model": self.model,
                                        "choices": [delta]}).encode() + b"\n\n"  # fmt: skip
        final = {"id": "x", "object": kind + ".chunk", "model": self.model, "choices": [], "usage": usage}
        tail = b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n"
        await self.stream_sse(loop, stream, arrived, tokens, event, tail)

    async def generate_stream(
        self, loop: asyncio.AbstractEventLoop, stream: Stream, arrived: float, body: dict[str, Any]
    ) -> None:
        """Triton's generate extension: one JSON value per input tensor; one event per response."""
        if not isinstance(body.get("text_input"), str) or not body["text_input"]:
            raise BadRequest("text_input: a non-empty string is required")
        tokens = body.get("max_tokens")
        if not isinstance(tokens, int) or tokens < 1:
            raise BadRequest(f"max_tokens: a positive integer is required, got {tokens!r}")
        if body.get("stream") is not True:
            raise BadRequest("stream: must be true for generate_stream (the model is decoupled)")
        event = {"model_name": self.model, "model_version": "1", "text_output": "tok "}
        await self.stream_sse(
            loop, stream, arrived, tokens, b"data: " + json.dumps(event).encode() + b"\n\n", b""
        )

    async def infer(
        self, loop: asyncio.AbstractEventLoop, stream: Stream, arrived: float, body: dict[str, Any]
    ) -> None:
        """KServe v2 inference with JSON tensors; the text is sent when the last token is due."""
        tensors = json_tensors(body)
        text_input, max_tokens = tensors.get("text_input"), tensors.get("max_tokens")
        if text_input is None or text_input[0] != "BYTES" or not isinstance(text_input[1][0], str):
            raise BadRequest("inputs: a BYTES tensor text_input holding the prompt is required")
        if max_tokens is None or max_tokens[0] != "INT32" or not isinstance(max_tokens[1][0], int):
            raise BadRequest("inputs: an INT32 tensor max_tokens is required")
        for i, output in enumerate(body.get("outputs") or ()):
            if output.get("name") != "text_output":
                raise BadRequest(f"outputs[{i}].name: unknown output {output.get('name')!r} (text_output)")
        tokens = max_tokens[1][0]
        sent = [0.0]
        self.timings.append({"arrived": arrived, "sent": sent})
        await sleep_until(arrived + self.ttft + (tokens - 1) * self.itl)
        output = {"name": "text_output", "datatype": "BYTES", "shape": [1, 1], "data": ["tok " * tokens]}
        sent[0] = clock()
        stream.stamp_into(sent, 0)
        await send_json(loop, stream, {"model_name": self.model, "model_version": "1", "outputs": [output]})


def json_tensors(body: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    """{name: (datatype, flattened data)} of a KServe v2 JSON request's inputs, checked against shape."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("inputs: a non-empty list of tensors is required")
    tensors = {}
    for i, tensor in enumerate(inputs):
        missing = [key for key in ("name", "datatype", "shape", "data") if key not in tensor]
        if missing:
            raise BadRequest(f"inputs[{i}].{missing[0]}: required (a tensor has name, datatype, shape, data)")
        data = list(_flatten(tensor["data"]))
        if math.prod(tensor["shape"]) != len(data):
            raise BadRequest(f"inputs[{i}].data: {len(data)} elements do not fill shape {tensor['shape']}")
        tensors[tensor["name"]] = (tensor["datatype"], data)
    return tensors


def _flatten(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _take_request(buffer: bytearray) -> tuple[str, str, bytes] | None:
    """(method, path, body) of the first complete request in `buffer`, removed from it."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_REQUEST_BYTES:
            raise Closed
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length > MAX_REQUEST_BYTES:
        raise Closed
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    method, path, _ = head[0].split(" ", 2)
    return method, path, body


@contextlib.contextmanager
def running(ttft_ms: float, itl_ms: float, *extra: str, start_timeout: float = 180.0) -> Iterator[str]:
    """A fake server in its own process on a free 127.0.0.1 port (`extra`: more of its options);
    yields its base URL.

    `start_timeout` bounds a hang, not a speed: the process imports grpc and Triton's client before it
    listens, which took more than 30 s while `make test` ran its three tiers on two cores."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "modelfleet_serve.bench.fake_server",
               "--port", str(port), "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), *extra]  # fmt: skip
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError as error:
                if server.poll() is not None:
                    raise RuntimeError(f"the fake server exited with {server.returncode}") from error
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the fake server did not answer {url}/health in {start_timeout:.0f} s"
                    ) from error
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--model", default="fake")
    parser.add_argument(
        "--prefix-block", type=int, default=0, help="words per prefix-cache block (0: no prefix cache)"
    )
    parser.add_argument("--prompt-tokens-details", action="store_true", help="report cached tokens in usage")
    parser.add_argument(
        "--max-concurrent", type=int, default=0, help="refuse completions beyond this many at once (429)"
    )
    args = parser.parse_args()
    server = FakeServer(
        args.ttft_ms,
        args.itl_ms,
        args.model,
        args.prefix_block,
        args.prompt_tokens_details,
        args.max_concurrent,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(args.host, args.port))


if __name__ == "__main__":
    main()
