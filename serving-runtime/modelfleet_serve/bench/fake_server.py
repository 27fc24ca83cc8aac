"""A streaming OpenAI-compatible server with known, injected latencies, to calibrate load generators.

Every request gets its first token `ttft_ms` after it arrived and each further token `itl_ms` after
the previous one, on an absolute schedule (no drift). The event loop's timers wake up to about 1 ms
late, and a busy host adds more; the server does not spin to hide that (spinning starves the other
streams on a small host), it records what it did instead. One token per chunk; `usage` in the last chunk.
`GET /timings` returns, per streamed request, when it arrived and when each chunk was written
(perf_counter seconds: CLOCK_MONOTONIC, shared by every process on the host), so a client's
measurements can be checked against what the server actually did even when the host is busy.
`python -m modelfleet_serve.bench.fake_server --port 8000 --ttft-ms 50 --itl-ms 10`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque

from aiohttp import web

clock = time.perf_counter
TIMINGS_KEPT = 100_000


async def sleep_until(due: float) -> None:
    remaining = due - clock()
    if remaining > 0:
        await asyncio.sleep(remaining)


def make_app(ttft_ms: float, itl_ms: float, model: str = "fake") -> web.Application:
    timings: deque[dict[str, object]] = deque(maxlen=TIMINGS_KEPT)

    async def completions(request: web.Request) -> web.StreamResponse:
        arrived = clock()
        body = await request.json()
        chat = request.path.endswith("/chat/completions")
        tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        prompt = body["messages"][-1]["content"] if chat else body.get("prompt", "")
        usage = {
            "prompt_tokens": len(str(prompt).split()),
            "completion_tokens": tokens,
            "total_tokens": len(str(prompt).split()) + tokens,
        }
        first_due = arrived + ttft_ms / 1000.0
        if not body.get("stream"):
            await sleep_until(first_due + (tokens - 1) * itl_ms / 1000.0)
            message = (
                {"message": {"role": "assistant", "content": "tok " * tokens}}
                if chat
                else {"text": "tok " * tokens}
            )
            return web.json_response(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [{"index": 0, "finish_reason": "length", **message}],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sent: list[float] = []
        timings.append({"arrived": arrived, "sent": sent})
        for k in range(tokens):
            await sleep_until(first_due + k * itl_ms / 1000.0)
            choice = {"index": 0, "delta": {"content": "tok "}} if chat else {"index": 0, "text": "tok "}
            chunk = {"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [choice]}
            sent.append(clock())
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        final = {"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}
        await response.write(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(_request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "fake"}]}
        )

    async def recorded(_request: web.Request) -> web.Response:
        return web.json_response(list(timings))

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/timings", recorded)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--model", default="fake")
    args = parser.parse_args()
    web.run_app(
        make_app(args.ttft_ms, args.itl_ms, args.model),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
