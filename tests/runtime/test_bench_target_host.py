"""The benchmark client behind a proxy that routes by ``Host``, as the KEDA HTTP add-on's interceptor does
(``targetHost``).

What stands in for the interceptor: a relay in this test process that reads every request's head,
answers 404 to a request whose ``Host`` it does not route (the interceptor's answer to an unknown host),
and otherwise forwards it over one upstream connection to the fake engine server
(``modelfleet_serve.bench.fake_server``, a process of its own), piping the streamed responses back. It
holds no request and scales nothing: the e2e tier's ``test_scale_from_zero`` runs the real interceptor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_serve.bench.cli import run_benchmark
from modelfleet_serve.bench.fake_server import running

pytestmark = pytest.mark.runtime

PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"
ROUTED = "llama.ml.svc.cluster.local"
NOT_ROUTED = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class HostRelay:
    """Forwards requests for ``ROUTED`` to ``upstream``; records every request's Host."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.hosts: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        pipe: asyncio.Task[None] | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                fields = dict(
                    line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
                )
                body = await reader.readexactly(int(fields.get("Content-Length", "0")))
                host = fields.get("Host", "")
                self.hosts.append(host)
                if host != ROUTED:
                    if pipe is not None:
                        break  # responses of routed requests are in flight on this connection
                    writer.write(NOT_ROUTED)
                    await writer.drain()
                    continue
                if upstream is None:
                    upstream_reader, upstream = await asyncio.open_connection(*self.upstream)
                    pipe = asyncio.ensure_future(self.copy(upstream_reader, writer))
                upstream.write(head + body)
                await upstream.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if pipe is not None:
                pipe.cancel()
            if upstream is not None:
                upstream.close()
            writer.close()

    @staticmethod
    async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        sink.close()

    def __enter__(self) -> HostRelay:
        started = threading.Event()
        self.stop = asyncio.Event()

        async def serve() -> None:
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                await self.stop.wait()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:  # connections still open
                task.cancel()
            await asyncio.sleep(0)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(serve(),), daemon=True)
        self.thread.start()
        assert started.wait(10), "the relay did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def relay() -> Iterator[HostRelay]:
    with running(ttft_ms=5.0, itl_ms=2.0) as upstream, HostRelay(upstream) as found:
        yield found


def config(relay: HostRelay, tmp_path: Path, **fields: object) -> BenchmarkRuntimeConfig:
    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": f"http://127.0.0.1:{relay.port}",
            "model": "fake",
            "protocol": "openai-chat",
            "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": 4}}},
            "load": {"mode": "closed-loop", "concurrency": 3, "requests": 30, "warmupRequests": 2},
            "outputDir": str(tmp_path),
            **fields,
        }
    )


def test_with_target_host_every_request_is_routed_and_answered(relay: HostRelay, tmp_path: Path) -> None:
    document, records = run_benchmark(config(relay, tmp_path, targetHost=ROUTED))
    assert document["summary"]["completed"] == 30 and document["summary"]["errors"] == 0
    assert all(r.ok for r in records)
    assert relay.hosts == [ROUTED] * 32, "every request, the warm-up's too, carried the routed Host"


def test_without_it_the_proxy_routes_nothing(relay: HostRelay, tmp_path: Path) -> None:
    document, _ = run_benchmark(config(relay, tmp_path))
    assert document["summary"]["completed"] == 0 and document["summary"]["errors"] == 30
    assert set(relay.hosts) == {f"127.0.0.1:{relay.port}"}
