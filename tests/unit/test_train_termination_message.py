"""The termination message a failed worker leaves (``modelfleet_train.failures``): the root cause
first, the exit code, then as many of the newest log lines as fit in the kubelet's 4 KiB."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelfleet_train.failures import (
    LOG_MARKER,
    RankFailure,
    read_rank_failures,
    record_rank_failure,
    termination_message,
)

pytestmark = pytest.mark.unit


def test_the_first_failing_rank_is_the_root_cause_and_the_others_are_named(tmp_path: Path) -> None:
    record_rank_failure(RuntimeError("NCCL watchdog timeout"), rank=1, run_dir=str(tmp_path))
    first = RankFailure(rank=3, type="OutOfMemoryError", message="CUDA out of memory", time=1.0)
    later = RankFailure(rank=1, type="RuntimeError", message="NCCL watchdog timeout", time=2.0)
    message = termination_message(exit_code=1, failures=[first, later], log_lines=["step 41/100 loss 1.9"])
    assert message == (
        "OutOfMemoryError: CUDA out of memory (rank 3; ranks 1 failed after it)\nexit code 1\n"
        f"{LOG_MARKER}\nstep 41/100 loss 1.9"
    )
    (found,) = read_rank_failures(tmp_path)
    assert (found.rank, found.type, found.message) == (1, "RuntimeError", "NCCL watchdog timeout")


def test_the_message_keeps_the_newest_lines_within_4_kib() -> None:
    lines = [f"line {i:05d} " + "x" * 90 for i in range(500)]
    message = termination_message(exit_code=137, failures=[], log_lines=lines)
    assert len(message.encode()) <= 4096
    assert message.startswith(
        "The launcher failed before any training process reported an error\nexit code 137"
    )
    kept = message.split(f"{LOG_MARKER}\n")[1].splitlines()
    assert kept == lines[-len(kept) :] and len(kept) > 30


def test_a_stopped_run_and_an_oversized_error_stay_within_bounds() -> None:
    assert termination_message(exit_code=1, failures=[], log_lines=[], stopped_by="SIGTERM") == (
        "Stopped by SIGTERM\nexit code 1"
    )
    huge = RankFailure(rank=0, type="ValueError", message="é" * 5000, time=0.0)
    message = termination_message(exit_code=1, failures=[huge], log_lines=["a"] * 10)
    assert len(message.encode()) <= 4096 and message.endswith("\na")


def test_nothing_is_recorded_outside_the_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELFLEET_RUN_DIR", raising=False)
    assert record_rank_failure(ValueError("x"), rank=0) is None
