"""The referee of the client comparison: a small OpenAI-compatible streaming server written for this
benchmark alone (not the project's fake server, which the client under test was tuned against), that
counts when each request arrived and stamps when each chunk left.

`POST /v1/completions` and `/v1/chat/completions` stream `tokens` chunks (the request's `max_tokens`
or `max_completion_tokens`), the first `ttft_ms` after the request arrived and each next `itl_ms` after
the previous one, on an absolute schedule from the arrival; the first chunk's text is `r<N> `, N the
request's arrival number, so a client's recorded output names the server record it belongs to; the
last event carries `usage`, then `[DONE]`. `GET /stats` returns every request since the last
`POST /reset`: `arrived` (the kernel's receive stamp of the request's last byte), `sent` (each chunk's
kernel transmit stamp), `request_id` (an `X-Request-ID` header, when the client sent one), all on
CLOCK_MONOTONIC (perf_counter seconds, shared by every process on the host).

Built on callbacks rather than a coroutine per request, one `send` per chunk (the response head goes
with the first, the usage event and the end with the last), so that the server, which shares the
machine's CPUs with the client under test, costs as little CPU per request as it can (the benchmark
reports the server's own CPU per request). Two options make it cheaper still where the comparison only
counts arrivals: `--tick-ms T` sends the chunks that are due once per tick of T ms instead of each on its
own timer (a chunk is then up to T ms late; its send is still stamped), and `--no-send-stamps` records a
clock read before each send instead of the kernel's transmit stamp. Kernel stamps come from
`modelfleet_serve.bench.netclock` (socket options and their decoding, nothing else of the client).

    python -m benchmarks.neutral_server --port 8123 --ttft-ms 1 --itl-ms 1   # from the repo root
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelfleet_serve.bench.netclock import (
    enable_rx_timestamps,
    enable_tx_timestamps,
    recv_stamped,
    sent_stamps,
)

from benchmarks.scale import procstat
from hack.controlplane.cluster import wait_for

READ_BYTES = 1 << 16
NS = 1e-9
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_response(document: object, status: str = "200 OK") -> bytes:
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Server:
    def __init__(self, ttft_ms: float, itl_ms: float, model: str, tick_ms: float, stamp_sends: bool) -> None:
        self.ttft, self.itl, self.model = ttft_ms / 1000.0, itl_ms / 1000.0, model
        self.tick = tick_ms / 1000.0
        self.stamp_sends = stamp_sends
        self.requests: list[dict[str, Any]] = []
        self.loop = asyncio.get_event_loop()
        self.due: list[tuple[float, int, Callable[[], None]]] = []
        """With a tick: chunks waiting for their time, sent by one timer per tick (a heap)."""
        self.pumping = False
        self.sequence = 0

    def at(self, when: float, send: Callable[[], None]) -> None:
        """Run `send` at `when`: its own timer, or (with a tick) the first tick at or after it."""
        if not self.tick:
            self.loop.call_at(when, send)
            return
        self.sequence += 1
        heapq.heappush(self.due, (when, self.sequence, send))
        if not self.pumping:
            self.pumping = True
            self.loop.call_at(math.ceil(when / self.tick) * self.tick, self.pump)

    def pump(self) -> None:
        now = self.loop.time()
        while self.due and self.due[0][0] <= now:
            heapq.heappop(self.due)[2]()
        if self.due:
            self.loop.call_at(
                max(math.ceil(self.due[0][0] / self.tick) * self.tick, now + self.tick / 2), self.pump
            )
        else:
            self.pumping = False

    def stats(self) -> list[dict[str, Any]]:
        return self.requests

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except BlockingIOError:
                return
            Connection(self, sock)


class Connection:
    """One keep-alive connection: requests parsed as they complete, responses paced by timers."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server, self.sock, self.loop = server, sock, server.loop
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        enable_rx_timestamps(sock)
        self.stamped = server.stamp_sends and enable_tx_timestamps(sock)
        self.buffer = bytearray()
        self.outgoing = bytearray()
        self.written = 0
        self.pending: list[tuple[int, list[float], int]] = []
        """(offset of a chunk's last byte in the stream, its request's `sent`, chunk number)."""
        self.busy = False
        self.closed = False
        self.loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        try:
            data, arrived_ns = recv_stamped(self.sock, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.buffer += data
        self.next_request(arrived_ns * NS)

    def next_request(self, arrived: float) -> None:
        while not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path, _ = lines[0].split(" ", 2)
            self.respond(method, path.split("?", 1)[0], headers, body, arrived)

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes, arrived: float) -> None:
        server = self.server
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            try:
                request = json.loads(body)
                tokens = int(request.get("max_tokens") or request.get("max_completion_tokens") or 16)
            except (ValueError, TypeError) as error:
                self.write(_json_response({"error": str(error)}, "400 Bad Request"))
                return
            self.stream(request, path.endswith("chat/completions"), tokens, headers, arrived)
        elif method == "GET" and path == "/stats":
            self.write(_json_response(server.stats()))
        elif method == "POST" and path == "/reset":
            server.requests = []
            self.write(_json_response({"reset": True}))
        elif method == "GET" and path == "/v1/models":
            self.write(_json_response({"object": "list", "data": [{"id": server.model, "object": "model"}]}))
        elif method == "GET" and path == "/health":
            self.write(_json_response({"status": "ok"}))
        else:
            self.write(_json_response({"error": f"no route {method} {path}"}, "404 Not Found"))

    def stream(
        self, request: dict[str, Any], chat: bool, tokens: int, headers: dict[str, str], arrived: float
    ) -> None:
        server = self.server
        number = len(server.requests)
        sent: list[float] = []
        server.requests.append(
            {"n": number, "arrived": arrived, "sent": sent, "request_id": headers.get("x-request-id")}
        )
        kind = "chat.completion.chunk" if chat else "text_completion"
        prompt = request.get("messages") if chat else request.get("prompt")
        prompt_tokens = len(json.dumps(prompt).split())

        def event(text: str) -> bytes:
            choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
            document = {"id": f"r{number}", "object": kind, "model": server.model, "choices": [choice]}
            return _chunk(b"data: " + json.dumps(document).encode() + b"\n\n")

        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        }
        final = {"id": f"r{number}", "object": kind, "model": server.model, "choices": [], "usage": usage}
        tail = _chunk(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n") + b"0\r\n\r\n"
        first, later = SSE_HEAD + event(f"r{number} "), event("tok ")
        self.busy = True

        def send(k: int) -> None:
            if self.closed:
                return
            sent.append(time.perf_counter())
            last = k + 1 == tokens
            self.write((first if k == 0 else later) + (tail if last else b""), sent, k)
            if not last:
                server.at(arrived + server.ttft + (k + 1) * server.itl, lambda: send(k + 1))
            else:
                self.busy = False
                self.next_request(arrived)

        server.at(arrived + server.ttft, lambda: send(0))

    def write(self, data: bytes, sent: list[float] | None = None, k: int = 0) -> None:
        if self.closed:
            return
        self.outgoing += data
        self.written += len(data)
        if sent is not None and self.stamped:
            self.pending.append((self.written - 1, sent, k))
        self.flush()

    def flush(self) -> None:
        try:
            while self.outgoing:
                count = self.sock.send(self.outgoing)
                del self.outgoing[:count]
        except BlockingIOError:
            self.loop.add_writer(self.sock.fileno(), self.writable)
            return
        except OSError:
            self.close()
            return
        if self.pending:
            stamps = sent_stamps(self.sock)
            keep = []
            for last_byte, sent, k in self.pending:
                if last_byte in stamps:
                    sent[k] = stamps[last_byte] * NS
                else:
                    keep.append((last_byte, sent, k))
            self.pending = keep

    def writable(self) -> None:
        self.loop.remove_writer(self.sock.fileno())
        self.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
        self.sock.close()


async def serve(host: str, port: int, server_options: dict[str, Any]) -> None:
    server = Server(**server_options)
    listener = socket.create_server((host, port), backlog=4096, reuse_port=True)
    listener.setblocking(False)
    server.loop.add_reader(listener.fileno(), server.accept, listener)
    await asyncio.Event().wait()


@dataclass(frozen=True)
class Running:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU the server process used so far (user + system)."""
        return procstat.cpu_seconds(self.pid)


@contextlib.contextmanager
def running(
    ttft_ms: float, itl_ms: float, model: str = "neutral", tick_ms: float = 0.0, stamp_sends: bool = True
) -> Iterator[Running]:
    """The server in its own process on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = [
        "--port",
        str(port),
        "--ttft-ms",
        str(ttft_ms),
        "--itl-ms",
        str(itl_ms),
        "--model",
        model,
        "--tick-ms",
        str(tick_ms),
        *([] if stamp_sends else ["--no-send-stamps"]),
    ]
    root = Path(__file__).parents[1]
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.neutral_server", *options], cwd=root)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the neutral server exited {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(healthy, 30, "the neutral server answering /health")
        yield Running(url, process.pid)
    finally:
        process.terminate()
        process.wait(10)


def stats(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/stats", timeout=60) as response:
        found: list[dict[str, Any]] = json.loads(response.read())
        return found


def reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/reset", method="POST"), timeout=10).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=1.0)
    parser.add_argument("--itl-ms", type=float, default=1.0)
    parser.add_argument("--model", default="neutral")
    parser.add_argument(
        "--tick-ms", type=float, default=0.0, help="send due chunks once per tick (0: each at its own time)"
    )
    parser.add_argument(
        "--no-send-stamps",
        action="store_true",
        help="record a clock read before each send, not the kernel's stamp",
    )
    args = parser.parse_args()
    options = {
        "ttft_ms": args.ttft_ms,
        "itl_ms": args.itl_ms,
        "model": args.model,
        "tick_ms": args.tick_ms,
        "stamp_sends": not args.no_send_stamps,
    }
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, options))


if __name__ == "__main__":
    main()
