"""The benchmark client's HTTP/1.1 pool against a server on loopback that promises keep-alive and
closes every connection once its response is sent: the close reaches a connection while it is idle
(its reader stays registered between exchanges), and each next request goes on a new connection."""

from __future__ import annotations

import asyncio

import pytest
from modelfleet_serve.bench.protocols.http1 import Http1Pool, with_body
from modelfleet_serve.bench.protocols.pool import Response

pytestmark = pytest.mark.runtime

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REQUESTS = 3


async def exchanges() -> tuple[list[bytes], int]:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Http1Pool(f"http://127.0.0.1:{port}", 4, 10.0)
    bodies = []
    for _ in range(REQUESTS):
        response = Response()
        await pool.exchange(with_body(pool.request_head("GET", "/", {}), b""), response)
        bodies.append(response.body)
        await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
    await pool.close()
    server.close()
    await server.wait_closed()
    return bodies, connections


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    bodies, connections = asyncio.run(exchanges())
    assert bodies == [b"ok"] * REQUESTS
    assert connections == REQUESTS
