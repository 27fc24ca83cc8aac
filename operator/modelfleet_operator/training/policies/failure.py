"""Failure and backoff: a failed or stalled gang restarts whole, until ``backoffLimit`` is spent.

One worker's failure breaks every rank's collective, so the whole Job is deleted and the next
attempt resumes from the latest checkpoint; each restart counts against ``spec.backoffLimit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelfleet_api import constants as c
from modelfleet_api.trainingjob import MAX_FAILURES_KEPT, TERMINATION_MESSAGE_MAX, AttemptFailure

from modelfleet_operator.training.workers import WorkerFailure


@dataclass(frozen=True, kw_only=True)
class RestartDecision:
    restart: bool
    """True: start attempt ``restarts + 1``; False: give up (phase Failed)."""
    reason: str
    """The cause (``WorkerFailed``, ``WorkerEvicted``, ``Stalled``) or ``BackoffLimitExceeded``."""
    message: str


def decide_restart(cause: str, detail: str, *, restarts: int, backoff_limit: int) -> RestartDecision:
    """``cause`` is a restart-cause reason from ``constants``; ``detail`` says what happened."""
    if restarts >= backoff_limit:
        return RestartDecision(
            restart=False,
            reason=c.REASON_BACKOFF_LIMIT_EXCEEDED,
            message=(
                f"{detail}. Gave up after {restarts} restart(s) (spec.backoffLimit {backoff_limit}). "
                "Read the workers' logs (kubectl logs -l modelfleet.io/trainingjob=NAME), fix the cause, "
                "then recreate the TrainingJob; it resumes from the latest checkpoint."
            ),
        )
    attempt = restarts + 1
    return RestartDecision(
        restart=True,
        reason=cause,
        message=(
            f"{detail}. Restarting the gang from the latest checkpoint "
            f"(restart {attempt} of at most {backoff_limit})."
        ),
    )


def record_failure(
    failures: list[AttemptFailure],
    *,
    attempt: int,
    cause: str,
    detail: str,
    worker: WorkerFailure | None,
    logs: str | None,
    now: datetime,
) -> list[AttemptFailure]:
    """``failures`` with this attempt's failure appended (the oldest dropped beyond
    ``MAX_FAILURES_KEPT``): the worker's own termination message when it wrote one, else ``detail``."""
    text = (worker.message if worker is not None and worker.message else detail)[
        : TERMINATION_MESSAGE_MAX + 512
    ]
    record = AttemptFailure(
        attempt=attempt,
        reason=cause,
        pod=worker.pod if worker is not None else None,
        node=worker.node if worker is not None else None,
        exit_code=worker.exit_code if worker is not None else None,
        message=text,
        logs=logs,
        time=now,
    )
    return [*failures, record][-MAX_FAILURES_KEPT:]
