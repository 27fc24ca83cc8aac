"""The CPU a client's process tree has used, sampled while it runs, so that the CPU of its load phase
(between the server's first arrival and its last chunk) can be told from that of its start-up and its
report. A client that imports heavy packages spends tens of CPU seconds starting on a loaded machine,
varying by more than a thousand requests cost it: the difference of two whole runs then says nothing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.scale.procstat import TICKS, stat_fields

INTERVAL_SECONDS = 0.05


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of `pid` and of its live descendants, with what the children they reaped
    used (cutime, cstime)."""
    ticks, stack = 0, [pid]
    while stack:
        process = stack.pop()
        try:
            ticks += sum(int(field) for field in stat_fields(process)[11:15])  # utime .. cstime
            for task in Path(f"/proc/{process}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):  # it ended meanwhile
            continue
    return ticks / TICKS


class CpuSampler:
    """Samples (perf_counter seconds, CPU seconds of the tree) every INTERVAL_SECONDS from a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.perf_counter(), tree_cpu_seconds(self.pid)))
            self.stopped.wait(INTERVAL_SECONDS)

    def stop(self) -> list[tuple[float, float]]:
        self.stopped.set()
        self.thread.join()
        return self.samples


def cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float | None:
    """CPU seconds used between `start` and `end` (perf_counter seconds), interpolated between
    samples; None when the samples do not cover that window."""
    if len(samples) < 2 or start < samples[0][0] or end > samples[-1][0]:
        return None
    times, cpu = np.array(samples).T
    return float(np.interp(end, times, cpu) - np.interp(start, times, cpu))
