"""Arrival times of an open-loop load and how they are shared between worker processes.

The combined schedule is drawn once, the same for any number of workers, then each arrival goes to
one worker: evenly spaced arrivals and a trace's are dealt round-robin (each worker gets every W-th,
so the workers interleave), Poisson arrivals are thinned at random (each arrival to a uniformly drawn
worker, which makes the workers' arrivals independent Poisson processes at rate/W). Either way the
union of what the workers send is exactly the requested schedule. `SessionPlan` numbers what is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from modelfleet_api.benchmark import ArrivalProcess

from modelfleet_serve.bench.records import Session


def arrival_offsets(
    rate: float, process: ArrivalProcess, seed: int, count: int | None, duration: float | None
) -> np.ndarray:
    """Increasing offsets (seconds after the measured phase starts, the first at 0) for `rate`
    requests per second: `count` of them, or those before `duration`, whichever is fewer."""
    if count is not None:
        constant_count = count
    elif duration is not None:
        constant_count = int(np.ceil(duration * rate))
    else:
        raise ValueError("arrival_offsets: need a count or a duration")
    if process is ArrivalProcess.CONSTANT:
        offsets = np.arange(constant_count) / rate
    else:
        rng = np.random.default_rng(seed)
        offsets = np.cumsum(np.concatenate([[0.0], rng.exponential(1.0 / rate, size=(count or 1) - 1)]))
        while count is None and duration is not None and offsets[-1] < duration:  # draw past its end
            more = rng.exponential(1.0 / rate, size=int(rate * duration) + 32)
            offsets = np.concatenate([offsets, offsets[-1] + np.cumsum(more)])
    return offsets[offsets < duration] if duration is not None else offsets


def assign_to_workers(n: int, workers: int, process: ArrivalProcess, seed: int) -> list[np.ndarray]:
    """For each worker, the indices (increasing) of the arrivals it sends."""
    if process is not ArrivalProcess.POISSON:
        owner = np.arange(n) % workers
    else:
        owner = np.random.default_rng(seed + 1).integers(workers, size=n)
    return [np.flatnonzero(owner == w) for w in range(workers)]


class SessionPlan:
    """The measured sessions of a point, numbered in the order they start; numbers past the end start
    the list over (a point bounded by its duration only). A session's requests have consecutive global
    indices, so `index < requests` is exactly "one of the first `requests` requests"."""

    def __init__(self, sessions: Sequence[Session]) -> None:
        if not sessions:
            raise ValueError("a load point needs at least one session")
        self.sessions = sessions
        self.starts = np.concatenate([[0], np.cumsum([len(s.turns) for s in sessions])]).tolist()
        self.requests = self.starts[-1]
        self.single_turn = all(len(s.turns) == 1 for s in sessions)

    def session(self, number: int) -> Session:
        return self.sessions[number % len(self.sessions)]

    def first_index(self, number: int) -> int:
        """Global index of the session's first request."""
        cycle, position = divmod(number, len(self.sessions))
        return int(cycle * self.requests + self.starts[position])

    def trace_offsets(self, rate: float, duration: float | None) -> np.ndarray:
        """Arrival offsets of the sessions as recorded in their trace (the first at 0), time-scaled so
        their mean rate is `rate`; with `duration`, every session starting before it (over and over)."""
        recorded = [s.offset for s in self.sessions]
        if any(offset is None for offset in recorded):
            raise ValueError("load.arrival: trace needs an offset_s on every request of workload.trace")
        offsets = np.array(recorded, dtype=float) - float(recorded[0] or 0.0)
        n = offsets.size
        mean_gap = offsets[-1] / (n - 1) if n > 1 and offsets[-1] > 0 else 1.0
        scaled = offsets / mean_gap / rate  # the mean gap becomes 1/rate
        if duration is None:
            return scaled
        period = scaled[-1] + 1.0 / rate
        cycles = int(np.ceil(duration / period)) + 1
        repeated = np.concatenate([scaled + k * period for k in range(cycles)])
        return repeated[repeated < duration]
