"""A small HTTP/1.1 keep-alive client for streamed responses, built for timing rather than features.

Why not aiohttp: between "start" and the request's bytes leaving, aiohttp builds the request (URL,
headers, cookies, JSON body), which took about 1 ms of CPU per request here and several ms on a busy
host, all of it counted as server latency; and a chunk's arrival can only be timestamped when its
coroutine resumes. Here the request is fully encoded before `start` is taken right before the `send`
system call, and every read carries the kernel's arrival stamp (`netclock`), taken in the read callback
before any parsing. The callback only de-frames the body (Content-Length, chunked or until close);
the caller parses it after the response ended.
"""

from __future__ import annotations

import asyncio
import socket
import time

from modelfleet_serve.bench.netclock import recv_stamped
from modelfleet_serve.bench.protocols.pool import (
    NS,
    READ_BYTES,
    Connection,
    ConnectionPool,
    HttpError,
    Response,
)

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """Incremental de-framing of one response; `feed` returns True when it is complete."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.state = _HEAD
        self.buffer = bytearray()
        self.remaining = 0
        self.keep_alive = True

    def feed(self, arrived: float, data: bytes) -> bool:
        buffer = self.buffer
        buffer += data
        while True:
            state = self.state
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return False
                self._head(bytes(buffer[:end]))
                del buffer[: end + 4]
            elif state in (_LENGTH, _CHUNK_DATA):
                take = min(self.remaining, len(buffer))
                if take:
                    self.response.pieces.append((arrived, bytes(buffer[:take])))
                    del buffer[:take]
                    self.remaining -= take
                if self.remaining:
                    return False
                self.state = _DONE if state == _LENGTH else _CHUNK_END
            elif state in (_CHUNK_SIZE, _TRAILER):
                end = buffer.find(b"\r\n")
                if end < 0:
                    return False
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                if state == _TRAILER:
                    self.state = _DONE if not line else _TRAILER
                    continue
                try:
                    self.remaining = int(line.split(b";", 1)[0], 16)
                except ValueError as error:
                    raise HttpError(f"bad chunk size {line[:40]!r}") from error
                self.state = _CHUNK_DATA if self.remaining else _TRAILER
            elif state == _CHUNK_END:
                if len(buffer) < 2:
                    return False
                del buffer[:2]
                self.state = _CHUNK_SIZE
            elif state == _UNTIL_CLOSE:
                if buffer:
                    self.response.pieces.append((arrived, bytes(buffer)))
                    buffer.clear()
                return False
            else:
                return True

    def _head(self, head: bytes) -> None:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x response: {status_line[:80]!r}")
        self.response.status = int(parts[1])
        headers = self.response.headers
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        self.keep_alive = connection != "close" and (parts[0] == "HTTP/1.1" or connection == "keep-alive")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = _CHUNK_SIZE
        elif "content-length" in headers:
            self.remaining = int(headers["content-length"])
            self.state = _LENGTH if self.remaining else _DONE
        else:
            self.keep_alive = False
            self.state = _UNTIL_CLOSE

    def closed(self) -> bool:
        """The peer closed the connection: True when that ended the response properly."""
        if self.state == _UNTIL_CLOSE:
            self.state = _DONE
        return self.state == _DONE


class Http1Connection(Connection[bytes]):
    """The reader stays registered for the connection's life rather than per exchange: that saves two
    epoll_ctl calls and the selector's bookkeeping per request, and a server closing an idle
    connection is seen when it happens (the connection is then `broken`; the pool retries a request
    that found it so on a new one)."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(sock, loop)
        self.parser: ResponseParser | None = None
        self.finished: asyncio.Future[None] | None = None
        self.broken: HttpError | None = None
        self.fd = sock.fileno()
        self.reading = True
        loop.add_reader(self.fd, self._readable)

    async def exchange(self, request: bytes, response: Response) -> bool:
        self.received = False
        if self.broken is not None:
            raise self.broken
        sock = self.sock
        parser = self.parser = ResponseParser(response)
        finished = self.finished = self.loop.create_future()
        try:
            response.start = time.perf_counter_ns() * NS
            try:  # the whole request fits the socket's buffer but for a long prompt: no coroutine then
                sent = sock.send(request)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent < len(request):
                await self.loop.sock_sendall(sock, memoryview(request)[sent:])
            await finished
        except OSError as error:
            raise HttpError(f"{type(error).__name__}: {error}") from error
        finally:
            self.finished = None
        return parser.keep_alive

    def _readable(self) -> None:
        try:
            data, arrived_ns = recv_stamped(self.sock, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._break(HttpError(f"{type(error).__name__}: {error}"))
            return
        parser, finished = self.parser, self.finished
        if finished is None or finished.done() or parser is None:
            self._break(
                HttpError("the server closed the idle connection" if not data else "bytes outside a response")
            )
            return
        try:
            if not data:
                if parser.closed():
                    parser.response.end = arrived_ns * NS
                    finished.set_result(None)
                else:
                    finished.set_exception(HttpError("connection closed before the response ended"))
                self._stop_reading()
                return
            self.received = True
            if parser.feed(arrived_ns * NS, data):
                parser.response.end = arrived_ns * NS
                finished.set_result(None)
        except HttpError as error:
            finished.set_exception(error)

    def _break(self, error: HttpError) -> None:
        """The connection is unusable: fail its exchange, if one is waiting, and stop reading."""
        self.broken = error
        self._stop_reading()
        if self.finished is not None and not self.finished.done():
            self.finished.set_exception(error)

    def _stop_reading(self) -> None:
        if self.broken is None:
            self.broken = HttpError("the connection was closed")
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.fd)

    def close(self) -> None:
        self._stop_reading()
        super().close()


class Http1Pool(ConnectionPool[bytes, Http1Connection]):
    """HTTP/1.1 keep-alive connections; a request is its encoded bytes (`request_head` and `with_body`)."""

    def connection(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> Http1Connection:
        return Http1Connection(sock, loop)

    def request_head(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        """A request's head up to its Content-Length value: the same for every request of an adapter,
        so it is encoded once (`with_body` completes it)."""
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Content-Length: ")
        return "\r\n".join(lines).encode("latin-1")


def with_body(head: bytes, body: bytes) -> bytes:
    """The request: `head` (from `request_head`), the body's length, the body."""
    return b"%b%d\r\n\r\n%b" % (head, len(body), body)
