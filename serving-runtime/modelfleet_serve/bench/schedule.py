"""Arrival times of an open-loop load: seconds after the start of the measured phase."""

from __future__ import annotations

import numpy as np
from modelfleet_api.benchmark import ArrivalProcess


def arrival_offsets(rate: float, count: int, process: ArrivalProcess, seed: int) -> np.ndarray:
    """`count` increasing offsets for `rate` requests per second, the first at 0."""
    if process is ArrivalProcess.CONSTANT:
        return np.arange(count) / rate
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=count)
    gaps[0] = 0.0
    return np.cumsum(gaps)
