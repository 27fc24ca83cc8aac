"""A background sampler of CPU, memory and GPU (NVML) statistics.

Sampling NVML and psutil costs milliseconds per call; a daemon thread takes them every few seconds
so the training loop only reads the latest snapshot and never waits on a driver call.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int


@dataclass(frozen=True)
class Snapshot:
    cpu_percent: float = 0.0
    process_rss_bytes: int = 0
    gpus: list[GpuSample] = field(default_factory=list)


def _nvml_available() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return True
    except Exception:  # no driver / no GPU: NVML is simply not there
        return False


def gpu_names() -> list[str]:
    if not _nvml_available():
        return []
    import pynvml

    return [
        pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
        for i in range(pynvml.nvmlDeviceGetCount())
    ]


class TelemetrySampler:
    def __init__(self, interval_seconds: float = 5.0) -> None:
        self.interval = interval_seconds
        self._latest = Snapshot()
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._nvml = _nvml_available()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)

    def start(self) -> TelemetrySampler:
        self._process.cpu_percent()  # the first call only sets the baseline
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)

    def latest(self) -> Snapshot:
        return self._latest

    def sample(self) -> Snapshot:
        return Snapshot(
            cpu_percent=self._process.cpu_percent(),
            process_rss_bytes=self._process.memory_info().rss,
            gpus=self._gpus() if self._nvml else [],
        )

    def _gpus(self) -> list[GpuSample]:
        import pynvml

        samples = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            samples.append(
                GpuSample(
                    index,
                    pynvml.nvmlDeviceGetName(handle),
                    float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                    int(memory.used),
                    int(memory.total),
                )
            )
        return samples

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._latest = self.sample()
            except Exception:  # telemetry must never take training down
                log.exception("telemetry sample failed")
