"""Stall detection: every worker runs but rank 0 reports no new step for ``stallTimeoutSeconds``.

A hung NCCL collective keeps every pod Running forever; only the absence of progress shows it.
The clock starts when the whole gang became Running, so a model that is still loading is not
mistaken for a stall as long as the timeout covers loading time.
"""

from __future__ import annotations

from datetime import datetime


def stall_message(
    *, last_progress_at: datetime | None, running_since: datetime, now: datetime, timeout_seconds: int
) -> str | None:
    """Why the gang counts as stalled, or None when it is not."""
    if timeout_seconds <= 0:
        return None
    last_sign = max(running_since, last_progress_at) if last_progress_at else running_since
    quiet = (now - last_sign).total_seconds()
    if quiet < timeout_seconds:
        return None
    what = "no progress was reported" if last_progress_at is None else "no new progress was reported"
    return f"Every worker runs but {what} for {int(quiet)}s (spec.stallTimeoutSeconds {timeout_seconds})"
