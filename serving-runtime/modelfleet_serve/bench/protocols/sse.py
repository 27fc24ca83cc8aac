"""Server-sent events of a response read by `http1`, with the arrival time of each event's data."""

from __future__ import annotations

from collections.abc import Iterator


def sse_data(pieces: list[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """(arrival, payload) of every `data:` line, arrival being that of the read that ended the line."""
    partial = b""
    for arrived, piece in pieces:
        lines = (partial + piece).split(b"\n")
        partial = lines.pop()
        for line in lines:
            if line.startswith(b"data:"):
                yield arrived, line[5:].strip()
