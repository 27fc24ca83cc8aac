"""Open-loop schedules and how a load point is split between worker processes."""

from __future__ import annotations

import numpy as np
import pytest
from modelfleet_api.benchmark import ArrivalProcess, KServeSettings, LoadPoint, Protocol
from modelfleet_serve.bench import runner
from modelfleet_serve.bench.records import BenchRequest, Session
from modelfleet_serve.bench.runner import Target, choose_workers, plan_workers
from modelfleet_serve.bench.schedule import SessionPlan, arrival_offsets, assign_to_workers

pytestmark = pytest.mark.unit

TARGET = Target("http://127.0.0.1:1", "m", Protocol.OPENAI_COMPLETIONS, KServeSettings())
PROMPTS = [BenchRequest(prompt=f"p{i}", max_tokens=4) for i in range(10)]
SESSIONS = SessionPlan([Session((PROMPTS[i % 10],)) for i in range(101)])


def test_constant_arrivals_are_evenly_spaced_and_bounded_by_count_or_duration() -> None:
    assert arrival_offsets(4.0, ArrivalProcess.CONSTANT, 0, 5, None).tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert arrival_offsets(4.0, ArrivalProcess.CONSTANT, 0, None, 1.0).tolist() == [0, 0.25, 0.5, 0.75]
    assert arrival_offsets(4.0, ArrivalProcess.CONSTANT, 0, 100, 0.6).tolist() == [0, 0.25, 0.5]


def test_poisson_arrivals_have_exponential_gaps_at_the_rate() -> None:
    offsets = arrival_offsets(200.0, ArrivalProcess.POISSON, 7, None, 50.0)
    gaps = np.diff(offsets)
    assert offsets[0] == 0.0 and offsets[-1] < 50.0 and np.all(gaps >= 0)
    assert offsets.size == pytest.approx(200 * 50, rel=0.03)
    # exponential: the standard deviation equals the mean
    assert gaps.mean() == pytest.approx(1 / 200, rel=0.03) and gaps.std() == pytest.approx(1 / 200, rel=0.03)
    assert np.array_equal(offsets[:100], arrival_offsets(200.0, ArrivalProcess.POISSON, 7, 100, None))


def test_constant_arrivals_are_dealt_round_robin() -> None:
    shares = assign_to_workers(7, 3, ArrivalProcess.CONSTANT, 0)
    assert [s.tolist() for s in shares] == [[0, 3, 6], [1, 4], [2, 5]]


def test_poisson_thinning_gives_each_worker_an_independent_poisson_share() -> None:
    rate, workers = 300.0, 3
    offsets = arrival_offsets(rate, ArrivalProcess.POISSON, 1, None, 100.0)
    shares = assign_to_workers(offsets.size, workers, ArrivalProcess.POISSON, 1)
    assert np.array_equal(np.sort(np.concatenate(shares)), np.arange(offsets.size))
    for share in shares:
        gaps = np.diff(offsets[share])
        assert gaps.mean() == pytest.approx(workers / rate, rel=0.04)
        assert gaps.std() == pytest.approx(workers / rate, rel=0.04)
        # independent increments: consecutive gaps are uncorrelated
        assert abs(np.corrcoef(gaps[:-1], gaps[1:])[0, 1]) < 0.05


def test_open_loop_plans_cover_the_combined_schedule_once() -> None:
    load = LoadPoint(mode="open-loop", request_rate=50.0, arrival="poisson", requests=101, warmup_requests=5)
    plans = plan_workers(TARGET, load, PROMPTS[:5], SESSIONS, 3, seed=11)
    indices = np.concatenate([p.numbers for p in plans])
    offsets = np.concatenate([p.offsets for p in plans])
    assert sorted(indices.tolist()) == list(range(101))
    single = arrival_offsets(50.0, ArrivalProcess.POISSON, 11, 101, None)
    assert np.array_equal(offsets[np.argsort(indices)], single)
    assert sorted(i for p in plans for i, _ in p.warmup) == [0, 1, 2, 3, 4]


def test_closed_loop_plans_split_the_users() -> None:
    load = LoadPoint(mode="closed-loop", concurrency=7, requests=20)
    plans = plan_workers(TARGET, load, [], SESSIONS, 3, seed=0)
    assert [p.concurrency for p in plans] == [3, 2, 2]
    assert [(p.worker, p.workers) for p in plans] == [(0, 3), (1, 3), (2, 3)]


def test_worker_count_is_the_requested_one_or_what_the_load_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "available_cpus", lambda: 4)
    per_worker = runner.EVENTS_PER_SECOND_PER_WORKER
    slow = LoadPoint(mode="open-loop", request_rate=10.0, requests=10)
    fast = LoadPoint(mode="open-loop", request_rate=2.5 * per_worker / 5, requests=10)
    huge = LoadPoint(mode="open-loop", request_rate=100 * per_worker, requests=10)
    assert choose_workers(slow, 3, 4.0) == 3
    assert choose_workers(slow, None, 4.0) == 1
    assert choose_workers(fast, None, 4.0) == 3  # 2.5 loops' worth of requests + chunks
    assert choose_workers(huge, None, 4.0) == 4  # never more than the CPUs
    many_users = LoadPoint(mode="closed-loop", concurrency=2 * runner.STREAMS_PER_WORKER + 1, requests=10)
    assert choose_workers(many_users, None, 4.0) == 3
