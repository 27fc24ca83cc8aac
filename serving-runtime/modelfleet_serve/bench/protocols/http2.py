"""A small HTTP/2 (cleartext, prior knowledge) client for gRPC calls, timed like `http1`.

Why not grpcio (what `tritonclient.grpc` runs on): its C core reads the socket in its own threads and
hands messages to Python later, with no access to the socket, so a message's arrival can only be
stamped when Python code sees it: after a hop between threads and, under load, a wait for the GIL.
Here the frames are read from a socket of our own, so every read carries the kernel's arrival stamp
(`netclock`), and `start` is taken right before the `send` system call of the already encoded
request. HTTP/2 framing, HPACK and flow control come from `h2` (a state machine, no I/O); this module
only moves bytes between it and the socket. One stream per connection at a time (see `pool`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from modelfleet_serve.bench.netclock import recv_stamped
from modelfleet_serve.bench.protocols.pool import (
    NS,
    READ_BYTES,
    Connection,
    ConnectionPool,
    HttpError,
    Response,
)


@dataclass(frozen=True)
class Http2Request:
    path: str
    headers: tuple[tuple[str, str], ...]
    """Headers after the pseudo-headers (:method POST, :scheme http, :path, :authority)."""
    body: bytes


class Http2Connection(Connection[Http2Request]):
    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, authority: str) -> None:
        super().__init__(sock, loop)
        self.authority = authority
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.h2.initiate_connection()
        self.open = True
        self.outgoing = bytearray()
        self.writing = False
        self.stream_id = 0
        self.body_left = b""
        self.response: Response | None = None
        self.finished: asyncio.Future[None] | None = None

    async def exchange(self, request: Http2Request, response: Response) -> bool:
        loop, conn = self.loop, self.h2
        self.response, self.finished, self.received = response, loop.create_future(), False
        try:
            self.stream_id = conn.get_next_available_stream_id()
            pseudo = [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", request.path),
                (":authority", self.authority),
            ]
            conn.send_headers(self.stream_id, [*pseudo, *request.headers])
            self.body_left = request.body
            self._queue_body()
        except h2.exceptions.H2Error as error:
            raise HttpError(f"HTTP/2: {type(error).__name__}: {error}") from error
        fd = self.sock.fileno()
        loop.add_reader(fd, self._readable)
        try:
            response.start = time.perf_counter_ns() * NS
            self._write(conn.data_to_send())
            await self.finished
        finally:
            loop.remove_reader(fd)
        return self.open and not self.outgoing

    def _queue_body(self) -> None:
        """Hand h2 as much of the request body as the peer's flow-control window and frame size allow
        (gRPC requests are usually one frame; a long prompt may wait for a window update)."""
        conn, stream_id = self.h2, self.stream_id
        while self.body_left:
            size = min(
                len(self.body_left), conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size
            )
            if size <= 0:
                return
            piece, self.body_left = self.body_left[:size], self.body_left[size:]
            conn.send_data(stream_id, piece, end_stream=not self.body_left)

    def _write(self, data: bytes) -> None:
        """Send now what the socket takes; the rest when it is writable again."""
        self.outgoing += data
        if self.writing:
            return
        try:
            while self.outgoing:
                sent = self.sock.send(self.outgoing)
                del self.outgoing[:sent]
        except (BlockingIOError, InterruptedError):
            self.writing = True
            self.loop.add_writer(self.sock.fileno(), self._writable)
        except OSError as error:
            self._fail(HttpError(f"{type(error).__name__}: {error}"), usable=False)

    def _writable(self) -> None:
        self.writing = False
        self.loop.remove_writer(self.sock.fileno())
        self._write(b"")

    def _fail(self, error: HttpError, usable: bool = True) -> None:
        self.open = self.open and usable
        if self.finished is not None and not self.finished.done():
            self.finished.set_exception(error)

    def _readable(self) -> None:
        finished, response = self.finished, self.response
        assert finished is not None and response is not None
        try:
            data, arrived_ns = recv_stamped(self.sock, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(HttpError(f"{type(error).__name__}: {error}"), usable=False)
            return
        if not data:
            self._fail(HttpError("connection closed before the response ended"), usable=False)
            return
        arrived = arrived_ns * NS
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.H2Error as error:
            self._fail(HttpError(f"HTTP/2: {type(error).__name__}: {error}"), usable=False)
            return
        for event in events:
            self._event(event, arrived, response)
        self._write(self.h2.data_to_send())

    def _event(self, event: h2.events.Event, arrived: float, response: Response) -> None:
        finished, stream_id = self.finished, self.stream_id
        assert finished is not None
        if isinstance(event, h2.events.ConnectionTerminated):
            self.open = False
            if event.last_stream_id is None or event.last_stream_id < stream_id:
                self._fail(HttpError(f"HTTP/2 GOAWAY before the response (error code {event.error_code})"))
            return
        if isinstance(event, h2.events.WindowUpdated):
            self._queue_body()
            return
        if getattr(event, "stream_id", None) != stream_id or finished.done():
            return
        if isinstance(event, h2.events.ResponseReceived):
            self.received = True
            headers = {str(name): str(value) for name, value in event.headers}
            response.status = int(headers.pop(":status", 0))
            response.headers.update(headers)
        elif isinstance(event, h2.events.TrailersReceived):
            response.headers.update((str(name), str(value)) for name, value in event.headers)
        elif isinstance(event, h2.events.DataReceived):
            response.pieces.append((arrived, event.data))
            self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            response.end = arrived
            finished.set_result(None)
        elif isinstance(event, h2.events.StreamReset):
            self._fail(HttpError(f"HTTP/2 stream reset by the server (error code {event.error_code})"))

    def close(self) -> None:
        if self.writing:
            self.loop.remove_writer(self.sock.fileno())
        super().close()


class Http2Pool(ConnectionPool[Http2Request, Http2Connection]):
    """HTTP/2 connections over cleartext TCP, each opened with the connection preface (no upgrade)."""

    def connection(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> Http2Connection:
        return Http2Connection(sock, loop, self.authority)
