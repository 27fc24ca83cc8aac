"""TTL after finished: a Succeeded or Failed TrainingJob is deleted ``ttlSecondsAfterFinished`` later."""

from __future__ import annotations

from datetime import datetime, timedelta


def ttl_expired(*, completion_time: datetime | None, ttl_seconds: int | None, now: datetime) -> bool:
    if ttl_seconds is None or completion_time is None:
        return False
    return now >= completion_time + timedelta(seconds=ttl_seconds)
