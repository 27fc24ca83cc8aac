"""One exchange through a connection pool, written into a request's record: the part every adapter
on `pool` shares (start and end times, transport errors, the check that text came back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelfleet_serve.bench.protocols.pool import ConnectionPool, HttpError, Response
from modelfleet_serve.bench.records import RequestRecord


async def exchange_into(
    pool: ConnectionPool[Any, Any],
    request: object,
    record: RequestRecord,
    parse: Callable[[Response, RequestRecord], None],
) -> None:
    """Send `request`, then (after the response ended, so parsing never delays a timestamp) let
    `parse` fill in the record's chunks, text, usage or error. Never raises for a failed request."""
    response = Response()
    try:
        await pool.exchange(request, response)
    except (HttpError, TimeoutError) as error:
        record.error = f"{type(error).__name__}: {error}"
        return
    finally:
        record.start, record.end = response.start, response.end
    try:
        parse(response, record)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # a malformed body
        record.error = f"{type(error).__name__}: {error}"
    if record.error is None and not record.chunk_times:
        record.error = "no generated text in the response"


def status_error(response: Response) -> str | None:
    """The error of a non-200 HTTP response, with the start of its body."""
    if response.status == 200:
        return None
    return f"HTTP {response.status}: {response.body[:200].decode(errors='replace')}"
