"""Server-sent events of a response read by `http1`, with the arrival time of each event's data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""The decoder's scanner (set in its __init__, not in typeshed): (value, end) of the JSON at an index."""


def sse_data(pieces: list[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """(arrival, payload) of every `data:` line, arrival being that of the read that ended the line."""
    partial = b""
    for arrived, piece in pieces:
        lines = (partial + piece).split(b"\n")
        partial = lines.pop()
        for line in lines:
            if line.startswith(b"data:"):
                yield arrived, line[5:].strip()


def sse_json(pieces: list[tuple[float, bytes]], stop: bytes | None = None) -> Iterator[tuple[float, Any]]:
    """(arrival, decoded JSON) of every `data:` line before one equal to `stop`. Decoded by the json
    module's C scanner directly: `json.loads` costs about three times as much per small event (its
    encoding detection and checks around the same scanner), the better part of a request's parsing."""
    for arrived, data in sse_data(pieces):
        if data == stop:
            return
        text = data.decode()
        try:
            value, end = _scan(text, 0)
        except StopIteration as error:
            raise json.JSONDecodeError("Expecting value", text, error.value) from None
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        yield arrived, value
