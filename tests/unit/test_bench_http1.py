"""De-framing of streamed HTTP/1.1 responses and timestamps of server-sent events."""

from __future__ import annotations

import itertools

import pytest
from modelfleet_serve.bench.protocols.http1 import HttpError, Response, ResponseParser
from modelfleet_serve.bench.protocols.sse import sse_data, sse_json

pytestmark = pytest.mark.unit

EVENTS = (b'data: {"a":1}\n\n', b'data: {"a":2}\n\n')
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(event), event) for event in EVENTS)
    + b"0\r\nTrailer: x\r\n\r\n"
)


def feed_pieces(raw: bytes, cuts: list[int]) -> tuple[ResponseParser, list[bool]]:
    parser = ResponseParser(Response())
    bounds = [0, *cuts, len(raw)]
    return parser, [parser.feed(float(i), raw[a:b]) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


def test_chunked_body_in_one_read() -> None:
    parser, finished = feed_pieces(CHUNKED, [])
    assert finished == [True] and parser.keep_alive
    assert parser.response.status == 200 and parser.response.headers["content-type"] == "text/event-stream"
    assert parser.response.body == b"".join(EVENTS)


def test_chunked_body_split_anywhere_keeps_each_piece_with_its_read() -> None:
    for cut in range(1, len(CHUNKED)):
        parser, finished = feed_pieces(CHUNKED, [cut])
        assert finished == [False, True], cut
        assert parser.response.body == b"".join(EVENTS)
    head_end = CHUNKED.index(b"\r\n\r\n") + 4
    second = CHUNKED.index(b"f;ext=1\r\n" + EVENTS[1])
    parser, _ = feed_pieces(CHUNKED, [head_end, second])
    assert [t for t, _ in parser.response.pieces] == [1.0, 2.0]


def test_content_length_and_connection_close() -> None:
    raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope!"
    parser, finished = feed_pieces(raw, [len(raw) - 2])
    assert finished == [False, True] and not parser.keep_alive
    assert parser.response.status == 404 and parser.response.body == b"nope!"


def test_body_until_close_ends_only_when_the_peer_closes() -> None:
    raw = b"HTTP/1.0 200 OK\r\n\r\ndata: x\n\n"
    parser, finished = feed_pieces(raw, [])
    assert finished == [False] and not parser.keep_alive
    assert parser.closed() and parser.response.body == b"data: x\n\n"


def test_a_response_cut_short_is_not_complete() -> None:
    parser, _ = feed_pieces(CHUNKED[:-7], [])
    assert not parser.closed()


def test_garbage_is_an_error() -> None:
    with pytest.raises(HttpError, match=r"not an HTTP/1\.x response"):
        feed_pieces(b"SSH-2.0-OpenSSH\r\n\r\n", [])
    with pytest.raises(HttpError, match="bad chunk size"):
        feed_pieces(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", [])


def test_an_event_gets_the_arrival_of_the_read_that_ended_its_line() -> None:
    pieces = [(1.0, b'data: {"a"'), (2.0, b":1}\n\ndata: [DO"), (3.0, b"NE]\n\n"), (4.0, b": comment\n")]
    assert list(sse_data(pieces)) == [(2.0, b'{"a":1}'), (3.0, b"[DONE]")]


def test_events_decoded_up_to_the_stop_line_each_with_its_arrival() -> None:
    pieces = [(1.0, b'data: {"a":1}\n\ndata: [1, "x"]\n'), (2.0, b"\ndata: [DONE]\n\ndata: {}\n\n")]
    assert list(sse_json(pieces, b"[DONE]")) == [(1.0, {"a": 1}), (1.0, [1, "x"])]


@pytest.mark.parametrize("data", [b"", b"{", b'{"a":1} {"b":2}', b"nope"])
def test_an_event_that_is_not_one_json_value_is_an_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        list(sse_json([(1.0, b"data: " + data + b"\n\n")]))
