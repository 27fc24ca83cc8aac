"""A streaming OpenAI-compatible server with known, injected latencies, to calibrate load generators.

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
load generator can be tested at). One token per chunk, one HTTP chunk per event, `usage` in the last
event (as vLLM with `stream_options.include_usage`).
`python -m modelfleet_serve.bench.fake_server --port 8000 --ttft-ms 50 --itl-ms 10`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from typing import Any

from modelfleet_serve.bench.netclock import (
    enable_rx_timestamps,
    enable_tx_timestamps,
    recv_stamped,
    sent_stamps,
)

clock = time.perf_counter
TIMINGS_KEPT = 100_000
READ_BYTES = 1 << 16
MAX_REQUEST_BYTES = 1 << 24


class _Closed(Exception):
    """The client closed the connection (between requests, or mid-request)."""


class FakeServer:
    def __init__(self, ttft_ms: float, itl_ms: float, model: str = "fake") -> None:
        self.ttft, self.itl, self.model = ttft_ms / 1000.0, itl_ms / 1000.0, model
        self.timings: deque[dict[str, Any]] = deque(maxlen=TIMINGS_KEPT)

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
        stream = _Stream(sock, enable_tx_timestamps(sock))
        buffer = bytearray()
        try:
            while True:
                arrived, method, path, body = await self.read_request(loop, sock, buffer)
                await self.respond(loop, stream, arrived, method, path, body)
        except (_Closed, ConnectionError):
            pass
        finally:
            sock.close()

    async def read_request(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, buffer: bytearray
    ) -> tuple[float, str, str, bytes]:
        arrived = clock()
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
                length = 0
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if len(buffer) >= end + 4 + length:
                    body = bytes(buffer[end + 4 : end + 4 + length])
                    del buffer[: end + 4 + length]
                    method, path, _ = head[0].split(" ", 2)
                    return arrived, method, path, body
            if len(buffer) > MAX_REQUEST_BYTES:
                raise _Closed
            data, arrived_ns = await _read(loop, sock)
            buffer += data
            arrived = arrived_ns * 1e-9

    async def respond(
        self, loop: asyncio.AbstractEventLoop, stream: _Stream, arrived: float, method: str, path: str,
        body: bytes,
    ) -> None:  # fmt: skip
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            await self.complete(loop, stream, arrived, json.loads(body), path.endswith("/chat/completions"))
        elif method == "GET" and path == "/timings":
            await _send_json(loop, stream, list(self.timings))
        elif method == "GET" and path == "/v1/models":
            model = {"id": self.model, "object": "model", "owned_by": "fake"}
            await _send_json(loop, stream, {"object": "list", "data": [model]})
        elif method == "GET" and path == "/health":
            await _send_json(loop, stream, {"status": "ok"})
        else:
            await _send_json(loop, stream, {"error": f"no route {method} {path}"}, status="404 Not Found")
        stream.settle()

    async def complete(
        self, loop: asyncio.AbstractEventLoop, stream: _Stream, arrived: float, body: dict[str, Any],
        chat: bool,
    ) -> None:  # fmt: skip
        tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        prompt = str(body["messages"][-1]["content"] if chat else body.get("prompt", ""))
        usage = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": tokens,
            "total_tokens": len(prompt.split()) + tokens,
        }
        kind = "chat.completion" if chat else "text_completion"
        if not body.get("stream"):
            await _sleep_until(arrived + self.ttft + (tokens - 1) * self.itl)
            choice = (
                {"message": {"role": "assistant", "content": "tok " * tokens}}
                if chat
                else {"text": "tok " * tokens}
            )
            document = {"id": "x", "object": kind, "model": self.model, "usage": usage,
                        "choices": [{"index": 0, "finish_reason": "length", **choice}]}  # fmt: skip
            await _send_json(loop, stream, document)
            return
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        choice = {"index": 0, "delta": {"content": "tok "}} if chat else {"index": 0, "text": "tok "}
        event = _chunk(b"data: " + json.dumps({"id": "x", "object": kind + ".chunk", "model": self.model,
                                               "choices": [choice]}).encode() + b"\n\n")  # fmt: skip
        final = {"id": "x", "object": kind + ".chunk", "model": self.model, "choices": [], "usage": usage}
        tail = _chunk(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n") + b"0\r\n\r\n"
        sent: list[float] = []
        self.timings.append({"arrived": arrived, "sent": sent})
        await stream.send(loop, head)
        first_due = arrived + self.ttft
        for k in range(tokens):
            await _sleep_until(first_due + k * self.itl)
            sent.append(clock())
            stream.stamp_into(sent, k)
            await stream.send(loop, event)
        await stream.send(loop, tail)


class _Stream:
    """A connection's outgoing byte stream; replaces each chunk's recorded send time with the kernel's
    transmit stamp of its last byte once the response is out."""

    def __init__(self, sock: socket.socket, stamped: bool) -> None:
        self.sock, self.stamped = sock, stamped
        self.written = 0
        self.pending: list[tuple[int, list[float], int]] = []

    def stamp_into(self, sent: list[float], k: int) -> None:
        """The next `send` carries chunk k of the response whose send times are `sent`."""
        if self.stamped:
            self.pending.append((-1, sent, k))

    async def send(self, loop: asyncio.AbstractEventLoop, data: bytes) -> None:
        await loop.sock_sendall(self.sock, data)
        self.written += len(data)
        if self.pending and self.pending[-1][0] == -1:
            _, sent, k = self.pending.pop()
            self.pending.append((self.written - 1, sent, k))

    def settle(self) -> None:
        """Collect the transmit stamps of the response just sent (the kernel queues them on the socket's
        error queue, which must be drained or the socket stays readable)."""
        if not self.stamped:
            return
        stamps = sent_stamps(self.sock)
        for last_byte, sent, k in self.pending:
            if last_byte in stamps:
                sent[k] = stamps[last_byte] * 1e-9
        self.pending.clear()


async def _read(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[bytes, int]:
    while True:
        try:
            data, arrived_ns = recv_stamped(sock, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            readable = loop.create_future()
            loop.add_reader(sock.fileno(), readable.set_result, None)
            try:
                await readable
            finally:
                loop.remove_reader(sock.fileno())
            continue
        if not data:
            raise _Closed
        return data, arrived_ns


async def _sleep_until(due: float) -> None:
    remaining = due - clock()
    if remaining > 0:
        await asyncio.sleep(remaining)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _send_json(
    loop: asyncio.AbstractEventLoop, stream: _Stream, document: object, status: str = "200 OK"
) -> None:
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    await stream.send(loop, head.encode() + body)


@contextlib.contextmanager
def running(ttft_ms: float, itl_ms: float, start_timeout: float = 30.0) -> Iterator[str]:
    """A fake server in its own process on a free 127.0.0.1 port; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "modelfleet_serve.bench.fake_server",
               "--port", str(port), "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]  # fmt: skip
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
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
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(FakeServer(args.ttft_ms, args.itl_ms, args.model).serve(args.host, args.port))


if __name__ == "__main__":
    main()
