"""Keep-alive TCP connections to one `http://host:port`, each carrying one exchange at a time, with the
kernel's receive stamps switched on (`netclock`). Shared by the HTTP/1.1 and the HTTP/2 (gRPC) clients,
which differ only in how a connection frames an exchange.

One exchange per connection at a time, also for HTTP/2: a read then holds one response's bytes only,
so its kernel stamp belongs to that response (streams multiplexed on one connection would share reads,
and every frame of a read gets the stamp of its last packet).
"""

from __future__ import annotations

import asyncio
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from modelfleet_serve.bench.netclock import enable_rx_timestamps

NS = 1e-9
READ_BYTES = 1 << 18


class HttpError(Exception):
    """The connection failed or the response was malformed."""


@dataclass
class Response:
    start: float = 0.0
    """perf_counter seconds just before the request's first byte was handed to the kernel."""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    """Response headers, lower-case names (HTTP/2: trailers too)."""
    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    """The de-framed body as read: (arrival in perf_counter seconds, bytes)."""
    end: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(piece for _, piece in self.pieces)


RequestT = TypeVar("RequestT")


class Connection(ABC, Generic[RequestT]):
    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock, self.loop = sock, loop
        self.received = False
        """Whether any byte of the current exchange's response arrived (a reused connection that
        failed before that is retried on a new one)."""

    @abstractmethod
    async def exchange(self, request: RequestT, response: Response) -> bool:
        """Send `request`, read the whole response into `response` (setting `start` just before the
        first byte is sent); True if the connection is reusable."""

    def close(self) -> None:
        self.sock.close()


ConnectionT = TypeVar("ConnectionT", bound=Connection)  # type: ignore[type-arg]


class ConnectionPool(ABC, Generic[RequestT, ConnectionT]):
    """At most `max_connections` connections at once; idle ones are reused."""

    def __init__(
        self, base_url: str, max_connections: int, timeout_seconds: float, host: str | None = None
    ) -> None:
        """``host``: the ``Host`` header (HTTP/2: ``:authority``) instead of the URL's host and port, for a
        proxy that routes by it (``targetHost``)."""
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"targetUrl: only http:// is supported by the streaming client, got {base_url}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = host or parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout_seconds
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: list[ConnectionT] = []
        self.address: tuple[object, ...] | None = None
        self.family = socket.AF_INET

    @abstractmethod
    def connection(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> ConnectionT:
        """A connection over the freshly connected `sock`."""

    async def _connect(self) -> ConnectionT:
        loop = asyncio.get_running_loop()
        if self.address is None:
            family, _, _, _, address = (
                await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            )[0]
            self.family, self.address = family, address
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            enable_rx_timestamps(sock)
            await loop.sock_connect(sock, self.address)
        except OSError as error:
            sock.close()
            raise HttpError(f"{type(error).__name__}: {error}") from error
        return self.connection(sock, loop)

    async def exchange(self, request: RequestT, response: Response) -> None:
        """Send one request and read its response into `response`. A kept-alive connection the server
        closed in the meantime is retried once on a new one. Raises HttpError or TimeoutError, with
        `response.start` and `response.end` set to when the attempt began and failed."""
        response.start = time.perf_counter_ns() * NS
        try:
            async with self.slots, asyncio.timeout(self.timeout):
                while True:
                    reused = bool(self.idle)
                    connection = self.idle.pop() if reused else await self._connect()
                    try:
                        reusable = await connection.exchange(request, response)
                    except HttpError:
                        connection.close()
                        if reused and not connection.received:
                            response.pieces.clear()
                            continue
                        raise
                    except BaseException:
                        connection.close()
                        raise
                    if reusable:
                        self.idle.append(connection)
                    else:
                        connection.close()
                    return
        except (HttpError, TimeoutError):
            response.end = time.perf_counter_ns() * NS
            raise

    async def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
