"""Why a worker stopped, told to Kubernetes: the pod's termination message (pure but for the files).

Each training process that fails writes what it died of (exception type, message, its rank) to a file
of its own in the run directory the supervisor (``modelfleet_train.supervise``) gives the processes of
the pod. When the launcher exits non-zero, the supervisor writes the termination message from them: the
first failure (the root cause: the other ranks usually fail after it, of a broken collective), the exit
code, and as many of the pod's last log lines as fit in the kubelet's 4 KiB. The operator carries the
message into the TrainingJob's status and an event.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelfleet_api import contract
from modelfleet_api.trainingjob import TERMINATION_MESSAGE_MAX

FAILURE_FILE_PREFIX = "failure-rank"
HEAD_MAX_BYTES = 1536
"""Of the message: at most this much for what failed; the rest goes to the last log lines."""
LOG_MARKER = "--- last log lines ---"


@dataclass(frozen=True, kw_only=True)
class RankFailure:
    rank: int
    type: str
    message: str
    time: float


def record_rank_failure(error: BaseException, rank: int, run_dir: str | None = None) -> Path | None:
    """Write ``error`` for the supervisor (nothing without a run directory: not run under it)."""
    directory = run_dir or os.environ.get(contract.ENV_RUN_DIR)
    if not directory:
        return None
    path = Path(directory) / f"{FAILURE_FILE_PREFIX}{rank}.json"
    record = {
        "rank": rank,
        "type": type(error).__name__,
        "message": str(error)[:HEAD_MAX_BYTES],
        "time": time.time(),
    }
    try:
        path.write_text(json.dumps(record))
    except OSError:
        return None
    return path


def read_rank_failures(run_dir: Path) -> list[RankFailure]:
    """The ranks' failures, earliest first (unreadable files are skipped)."""
    found = []
    for path in run_dir.glob(f"{FAILURE_FILE_PREFIX}*.json"):
        try:
            data = json.loads(path.read_text())
            found.append(
                RankFailure(
                    rank=int(data["rank"]),
                    type=str(data["type"]),
                    message=str(data["message"]),
                    time=float(data["time"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda failure: (failure.time, failure.rank))


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (on a character boundary)."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def termination_message(
    *,
    exit_code: int,
    failures: Sequence[RankFailure],
    log_lines: Sequence[str],
    stopped_by: str | None = None,
    limit: int = TERMINATION_MESSAGE_MAX,
) -> str:
    """What failed, then the last log lines that fit in ``limit`` bytes (the newest kept)."""
    if failures:
        first = failures[0]
        others = sorted({f.rank for f in failures[1:]})
        head = f"{first.type}: {first.message} (rank {first.rank}"
        head += f"; ranks {', '.join(map(str, others))} failed after it)" if others else ")"
    elif stopped_by:
        head = f"Stopped by {stopped_by}"
    else:
        head = "The launcher failed before any training process reported an error"
    head = _fit(f"{head}\nexit code {exit_code}", HEAD_MAX_BYTES)
    budget = limit - len(head.encode()) - len(f"\n{LOG_MARKER}\n".encode())
    tail: list[str] = []
    for line in reversed(log_lines):
        size = len(line.encode()) + 1
        if size > budget:
            break
        tail.append(line)
        budget -= size
    if not tail:
        return head
    return "\n".join([head, LOG_MARKER, *reversed(tail)])
