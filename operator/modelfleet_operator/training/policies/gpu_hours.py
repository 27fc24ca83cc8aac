"""GPU-hours: GPUs held x wall time, accumulated over every attempt.

The status keeps the running total, the GPUs held at the last update (``status.gpus``) and when
that was (``status.gpuHoursUpdatedAt``). Each update adds ``held x elapsed`` for the interval since,
so the total survives operator restarts and gang restarts. While GPUs are held, the total is
brought up to date at most every ``min_interval_seconds`` (and at every change of the GPUs held),
and the plan asks for an update only when it writes the status anyway or the GPUs held changed, so a
running job that reports nothing new writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MIN_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, kw_only=True)
class GpuAccount:
    gpu_hours: float
    gpus: int
    """GPUs held now."""
    updated_at: datetime | None
    """None while no GPU is held."""


def account(
    previous: GpuAccount, *, gpus_now: int, now: datetime, min_interval_seconds: float = MIN_INTERVAL_SECONDS
) -> GpuAccount:
    if previous.updated_at is None:
        return GpuAccount(gpu_hours=previous.gpu_hours, gpus=gpus_now, updated_at=now if gpus_now else None)
    elapsed = max(0.0, (now - previous.updated_at).total_seconds())
    if gpus_now == previous.gpus and elapsed < min_interval_seconds:
        return previous
    hours = round(previous.gpu_hours + previous.gpus * elapsed / 3600.0, 4)
    return GpuAccount(gpu_hours=hours, gpus=gpus_now, updated_at=now if gpus_now else None)
