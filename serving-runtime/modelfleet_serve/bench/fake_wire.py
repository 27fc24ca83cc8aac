"""Socket plumbing of the fake server (`fake_server`, `fake_grpc`): reads with the kernel's receive
stamp, sends whose kernel transmit stamp becomes the recorded send time, and paced sleeps."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from modelfleet_serve.bench.netclock import recv_stamped, sent_stamps

clock = time.perf_counter
READ_BYTES = 1 << 16


class Closed(Exception):
    """The client closed the connection (between requests, or mid-request)."""


class Stream:
    """A connection's outgoing byte stream; replaces each chunk's recorded send time with the kernel's
    transmit stamp of its last byte once it is out."""

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
        """Collect the transmit stamps of what was sent (the kernel queues them on the socket's error
        queue, which must be drained or the socket stays readable)."""
        if not self.stamped:
            return
        stamps = sent_stamps(self.sock)
        for last_byte, sent, k in self.pending:
            if last_byte in stamps:
                sent[k] = stamps[last_byte] * 1e-9
        self.pending.clear()


async def read(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[bytes, float]:
    """The next bytes from `sock` and their arrival (kernel stamp, perf_counter seconds)."""
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
            raise Closed
        return data, arrived_ns * 1e-9


async def sleep_until(due: float) -> None:
    remaining = due - clock()
    if remaining > 0:
        await asyncio.sleep(remaining)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


async def send_json(
    loop: asyncio.AbstractEventLoop, stream: Stream, document: object, status: str = "200 OK"
) -> None:
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    await stream.send(loop, head.encode() + body)
