"""Success: every worker index exited 0 (the Indexed Job's own Complete condition agrees)."""

from __future__ import annotations

from typing import Any

from modelfleet_operator.training.workers import WorkerSummary


def job_condition_true(job: dict[str, Any], type_: str) -> bool:
    return any(
        cond.get("type") == type_ and cond.get("status") == "True"
        for cond in job.get("status", {}).get("conditions") or []
    )


def all_workers_succeeded(summary: WorkerSummary, job: dict[str, Any], *, nodes: int) -> bool:
    return len(summary.succeeded_indexes) >= nodes or job_condition_true(job, "Complete")
