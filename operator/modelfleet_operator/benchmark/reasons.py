"""Reasons of failed points and of the sweep's Failed condition, besides those in
``modelfleet_api.constants`` (``TargetNotFound``, ``TargetFailed``, ``InvalidSpec``).

They belong in ``modelfleet_api.constants`` with the others; they live here until that module's owner
moves them, so each is still documented with what it belongs to.
"""

from __future__ import annotations

from typing import Final

POINT_JOB_FAILED: Final = "JobFailed"
"""Point: the benchmark Job failed (the message carries the pod's termination message or log tail)."""
POINT_RESULT_MISSING: Final = "ResultMissing"
"""Point: the Job succeeded but its pod left no termination message with the point's figures."""
POINT_RESULT_UNPARSEABLE: Final = "ResultUnparseable"
"""Point: the termination message is not a ``PointMetrics`` JSON document."""
POINT_TARGET_NOT_READY: Final = "TargetReadyTimeout"
"""Point: its target deployment did not become Ready within the ready timeout."""
SWEEP_NO_POINT_SUCCEEDED: Final = "NoPointSucceeded"
"""Failed=True (BenchmarkSweep): every point ended and none was measured; see status.points."""
