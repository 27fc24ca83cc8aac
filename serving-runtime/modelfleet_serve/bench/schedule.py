"""Arrival times of an open-loop load and how they are shared between worker processes.

The combined schedule is drawn once, the same for any number of workers, then each arrival goes to
one worker: evenly spaced arrivals are dealt round-robin (each worker gets every W-th, so the workers
interleave), Poisson arrivals are thinned at random (each arrival to a uniformly drawn worker, which
makes the workers' arrivals independent Poisson processes at rate/W). Either way the union of what
the workers send is exactly the requested schedule.
"""

from __future__ import annotations

import numpy as np
from modelfleet_api.benchmark import ArrivalProcess


def arrival_offsets(
    rate: float, process: ArrivalProcess, seed: int, count: int | None, duration: float | None
) -> np.ndarray:
    """Increasing offsets (seconds after the measured phase starts, the first at 0) for `rate`
    requests per second: `count` of them, or those before `duration`, whichever is fewer."""
    if count is None:
        if duration is None:
            raise ValueError("arrival_offsets: need a count or a duration")
        count = int(np.ceil(duration * rate)) if process is ArrivalProcess.CONSTANT else None
    if process is ArrivalProcess.CONSTANT:
        offsets = np.arange(count) / rate
    else:
        rng = np.random.default_rng(seed)
        offsets = np.cumsum(np.concatenate([[0.0], rng.exponential(1.0 / rate, size=(count or 1) - 1)]))
        while count is None and offsets[-1] < duration:  # duration only: draw until past its end
            more = rng.exponential(1.0 / rate, size=int(rate * duration) + 32)
            offsets = np.concatenate([offsets, offsets[-1] + np.cumsum(more)])
    return offsets[offsets < duration] if duration is not None else offsets


def assign_to_workers(n: int, workers: int, process: ArrivalProcess, seed: int) -> list[np.ndarray]:
    """For each worker, the indices (increasing) of the arrivals it sends."""
    if process is ArrivalProcess.CONSTANT:
        owner = np.arange(n) % workers
    else:
        owner = np.random.default_rng(seed + 1).integers(workers, size=n)
    return [np.flatnonzero(owner == w) for w in range(workers)]
