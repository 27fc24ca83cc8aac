"""The referee's arithmetic of the client comparison (benchmarks/bench_client_capacity.py): when the
neutral server counts a rate as sustained, and how a client's records pair with the server's (pure)."""

from __future__ import annotations

import pytest

from benchmarks.bench_client_capacity import match, server_count
from benchmarks.peers import ClientRecord, Job, key_of_output

pytestmark = pytest.mark.unit


def arrivals(times: list[float], tokens: int = 4) -> list[dict[str, object]]:
    return [
        {"n": n, "arrived": t, "sent": [t + 0.001 * (k + 1) for k in range(tokens)], "request_id": None}
        for n, t in enumerate(times)
    ]


JOB = Job("http://x", "m", requests=200, rate=100.0)


def test_evenly_spaced_complete_arrivals_at_the_rate_are_sustained() -> None:
    count = server_count(arrivals([5.0 + i / 100 for i in range(200)]), JOB)
    assert count["sustained"] and count["arrived"] == count["completed"] == 200
    assert count["rate"] == pytest.approx(100.0) and count["late"] == 0


@pytest.mark.parametrize(
    ("times", "tokens", "why"),
    [
        ([i / 100 for i in range(199)], 4, "a request never arrived"),
        ([i / 100 for i in range(200)], 3, "responses did not complete"),
        ([i / 97 for i in range(200)], 4, "3 % slow"),
        ([i / 100 + (0.05 if i % 20 == 0 else 0) for i in range(200)], 4, "5 % of arrivals 50 ms late"),
    ],
)
def test_a_rate_is_not_sustained_when(times: list[float], tokens: int, why: str) -> None:
    assert not server_count(arrivals(times, tokens), JOB)["sustained"], why


def test_a_warm_up_request_before_the_run_is_left_out() -> None:
    count = server_count(arrivals([0.0] + [5.0 + i / 100 for i in range(200)]), JOB)
    assert count["sustained"] and count["arrived"] == 200


def test_client_records_pair_with_the_server_records_they_name() -> None:
    server = arrivals([1.0, 1.5])
    server[1]["request_id"] = "abc"
    records = [
        ClientRecord(key_of_output("r0 tok tok tok "), ttft=0.00105, itl=0.001, ok=True),
        ClientRecord(("request_id", "abc"), ttft=0.0009, itl=0.0011, ok=True),
        ClientRecord(key_of_output("no marker"), ttft=0.5, itl=None, ok=True),
    ]
    found = match(records, server)
    assert found["unmatched"] == 1
    assert found["ttft_error"]["n"] == 2 and found["ttft_error"]["p50_ms"] == pytest.approx(0.075)
    assert found["itl_error"]["p99_ms"] == pytest.approx(0.099)  # of 0 and 0.1 ms
