"""The scale benchmark's pure parts: the audit count, the children set, percentiles, the targets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scale import audit, server
from benchmarks.scale.phases import percentiles
from benchmarks.scale.report import targets
from benchmarks.scale.workload import child_keys, children_of, training_job

pytestmark = pytest.mark.unit

OPERATOR = "system:serviceaccount:modelfleet-bench:operator"


def audit_event(audit_id: str, user: str, verb: str, stage: str, at: float, resource: str) -> str:
    received = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "auditID": audit_id,
            "stage": stage,
            "verb": verb,
            "user": {"username": user},
            "objectRef": {"resource": resource, "namespace": "ns"},
            "requestReceivedTimestamp": received,
        }
    )


def test_audit_counts_each_request_of_the_user_once_inside_the_window(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = [
        audit_event("a", OPERATOR, "get", "ResponseComplete", 100.5, "trainingjobs"),
        audit_event("w", OPERATOR, "watch", "ResponseStarted", 101.0, "jobs"),
        audit_event("w", OPERATOR, "watch", "ResponseComplete", 101.0, "jobs"),  # the same watch, ended
        audit_event("b", "someone-else", "list", "ResponseComplete", 102.0, "pods"),
        audit_event("c", OPERATOR, "get", "ResponseComplete", 99.0, "trainingjobs"),  # before the window
        audit_event("d", OPERATOR, "patch", "ResponseComplete", 110.0, "trainingjobs"),  # at its end
        '{"auditID": "half a line',
    ]
    log.write_text("\n".join(lines))
    found = audit.count(log, OPERATOR, start=100.0, end=110.0)
    assert found.as_dict() == {
        "total": 2,
        "by_verb": {"get": 1, "watch": 1},
        "by_resource": {"trainingjobs": 1, "jobs": 1},
    }
    assert audit.watched(log, OPERATOR) == {"jobs"}
    offset = len("\n".join(lines[:2])) + 1
    assert audit.count(log, OPERATOR, start=100.0, end=110.0, offset=offset).total == 1


def test_children_are_the_operators_own_set_with_the_job_named_after_the_training_job() -> None:
    keys = child_keys("tj-00001", "ns", workers=4)
    assert ("Job", "tj-00001") in keys
    assert len(keys) == len(set(keys))
    created = {
        **training_job("tj-00001", 4),
        "metadata": {"name": "tj-00001", "namespace": "ns", "uid": "u1"},
    }
    manifests = children_of(created)
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == keys
    assert all(m["metadata"]["ownerReferences"][0]["uid"] == "u1" for m in manifests)
    (job,) = [m for m in manifests if m["kind"] == "Job"]
    assert job["spec"]["parallelism"] == 4


def test_percentiles_of_nothing_are_empty_and_of_values_interpolate() -> None:
    assert percentiles([]) == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    found = percentiles(float(x) for x in range(1, 101))
    assert found == {"count": 100, "p50": 50.5, "p95": 95.05, "p99": 99.01, "max": 100.0}


def test_throttled_seconds_sum_every_verb_and_host() -> None:
    page = "\n".join(
        [
            "# HELP rest_client_rate_limiter_duration_seconds ...",
            'rest_client_rate_limiter_duration_seconds_bucket{host="h",verb="POST",le="0.005"} 3',
            'rest_client_rate_limiter_duration_seconds_sum{host="h",verb="POST"} 1.5',
            'rest_client_rate_limiter_duration_seconds_sum{host="h",verb="GET"} 0.25',
            'rest_client_rate_limiter_duration_seconds_count{host="h",verb="GET"} 9',
        ]
    )
    assert server.throttled_seconds(page) == 1.75


def burst(size: int, rate: float, p99: float, rss: float, complete: bool = True) -> dict[str, Any]:
    return {
        "training_jobs": size,
        "plain": {"complete": True},
        "operator": {"complete": complete, "peak_rss_mb": rss},
        "operator_vs_plain": {"children_rate": rate, "p99_latency": p99},
    }


def test_targets_are_judged_only_at_the_issues_sizes() -> None:
    phases = {
        "burst": [burst(100, 0.5, 9.0, 120.0), burst(1000, 0.95, 1.5, 310.0)],
        "steady": {
            "rate_per_second": 20.0,
            "seconds": 60.0,
            "complete": True,
            "job_latency_seconds": {"p99": 0.4},
        },
        "idle": {
            "training_jobs": 500,
            "model_deployments": 100,
            "operator_requests_per_second": 2.5,
            "operator_cpu_percent_of_a_core": 1.0,
        },
    }
    judged = {t["name"]: (t["value"], t["met"]) for t in targets(phases)}
    assert judged == {
        "burst: children rate vs the plain client": (0.95, True),
        "burst: Job latency p99 vs the plain client's": (1.5, True),
        "operator peak RSS at 1000 TrainingJobs (MB)": (310.0, False),
        "steady 20/s for 60 s: Job latency p99 (s)": (0.4, True),
        "idle: operator API requests per second": (2.5, False),
        "idle: operator CPU (% of a core)": (1.0, True),
    }


def test_targets_of_a_small_or_unfinished_run() -> None:
    small = targets({"burst": [burst(5, 1.0, 1.0, 90.0)], "steady": {"rate_per_second": 2.0, "seconds": 4.0}})
    assert {t["met"] for t in small} == {None}
    assert all(t["note"] for t in small)
    unfinished = targets({"burst": [burst(1000, 0.95, 1.5, 200.0, complete=False)]})
    assert [t["met"] for t in unfinished[:3]] == [False, False, True]


def test_the_operator_runs_without_the_sync_client_as_in_its_image() -> None:
    import subprocess
    import sys

    from benchmarks.scale.contestants import AS_IN_ITS_IMAGE, operator_command

    command = operator_command(9990, 9991)
    assert command == [
        sys.executable, "-c", AS_IN_ITS_IMAGE,
        "--standalone", "--all-namespaces", "--health-port", "9990", "--metrics-port", "9991",
    ]  # fmt: skip
    usage = subprocess.run([*command[:3], "--help"], capture_output=True, text=True, timeout=120, check=True)
    assert usage.stdout.startswith("usage: modelfleet-operator")
    hidden = AS_IN_ITS_IMAGE.split("runpy.run_module")[0]
    probe = hidden + "import modelfleet_operator.__main__; print(sys.modules['kubernetes'])"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "None", "kopf loaded the sync client"


def test_quick_shares_one_plane_unless_told_otherwise_and_the_full_run_does_not() -> None:
    from benchmarks.operator_scale import arguments

    def plane(*argv: str) -> str:
        args, _ = arguments(["--out", "report.json", *argv])
        return str(args.plane)

    assert plane() == "fresh"  # what docs/operations.md describes for the real benchmark
    assert plane("--quick") == "shared"
    assert plane("--quick", "--plane", "fresh") == "fresh"
    assert plane("--plane", "shared") == "shared"
    args, env = arguments(["--out", "r.json", "--quick", "--burst-sizes", "7", "--operator-env", "A=1"])
    assert (args.burst_sizes, args.steady_seconds, env) == ([7], 4.0, {"A": "1"})
