"""The operator scale benchmark itself works: a ``--quick`` run on a control plane of its own.

``--quick`` runs every measurement on one plane (``--plane shared``), each in a namespace of its own that
is cleared after it: starting a fresh plane for each of the seven measurements, as the full benchmark
does, took half of this test's time and CPU. The counts asserted here are exact either way.

Only the report's shape and the consistency of its counts are asserted, never a timing: the figures
are the benchmark's to report (``make bench-operator-scale``), not a test's to judge.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scale.workload import child_keys
from hack.controlplane.cluster import PORT_BASE, REPO_ROOT

pytestmark = pytest.mark.cluster

PORT_OFFSET = 500
"""Ports from MODELFLEET_PORT_BASE: `make cluster-up` +0, a manual benchmark +100, the test plane +200, a
second test plane +300, the e2e plane +400."""
WORKERS = 2


def no_process_under(run_dir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(run_dir) in cmdline:
                found.append(cmdline[:120])
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("operator-scale")
    out, run_dir = work / "report.json", work / "plane"
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.operator_scale", "--quick", "--out", str(out),
            "--run-dir", str(run_dir), "--port-base", str(PORT_BASE + PORT_OFFSET),
            "--workers", str(WORKERS), "--phases", "burst,steady,steady-plain,idle,client-check",
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    assert "Issue 18 targets" in result.stdout
    assert no_process_under(run_dir) == []  # the benchmark's control plane and operators are stopped
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def children_per_training_job() -> int:
    return len(child_keys("tj-00000", "ns", WORKERS))


def assert_consistent_burst(run: dict[str, Any], size: int, who: str) -> None:
    expected = size * children_per_training_job()
    assert run["complete"] is True and run["watch_error"] is None
    assert run["children_expected"] == run["children_seen"] == expected
    assert run["job_latency_seconds"]["count"] == run["all_children_latency_seconds"]["count"] == size
    assert run["pods"]["expected"] == run["pods"]["created"] == run["pods"]["running"] == size * WORKERS
    assert run["pods"]["job_to_all_pods_running_seconds"]["count"] == size
    window = run["window_until_all_children"]
    assert len(window["loadavg_before"]) == 3 and window["contestant_cpu_seconds"] >= 0
    assert set(window["control_plane_cpu_seconds"]) == {
        "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
    }  # fmt: skip
    assert set(window["client_side_throttled_seconds"]) == {"kube-controller-manager", "kube-scheduler"}
    assert window["apiserver"]["requests"] > 0
    requests = run["window_total"][f"{who}_requests"]
    if who == "plain":  # one POST per child and nothing else: the audit log and the watches agree
        assert requests["by_verb"] == {"create": expected}
    else:  # the operator creates its children by server-side apply (PATCH), and patches its status too
        writes = requests["by_verb"].get("create", 0) + requests["by_verb"].get("patch", 0)
        assert writes >= expected
    assert run["peak_rss_mb"] > 0


def test_burst_compares_the_operator_with_the_plain_client(report: dict[str, Any]) -> None:
    (burst,) = report["phases"]["burst"]
    size = burst["training_jobs"]
    assert size == 5
    assert_consistent_burst(burst["plain"], size, "plain")
    assert_consistent_burst(burst["operator"], size, "operator")
    running = burst["operator"]["training_jobs_running"]
    assert running["expected"] == running["running"] == size
    ratios = burst["operator_vs_plain"]
    plain, operator = burst["plain"], burst["operator"]
    assert ratios["children_rate"] == pytest.approx(
        operator["children_per_second"] / plain["children_per_second"], rel=0.01
    )


def test_steady_phase_sees_a_job_for_every_training_job(report: dict[str, Any]) -> None:
    steady = report["phases"]["steady"]
    count = steady["training_jobs"]
    assert count == round(steady["rate_per_second"] * steady["seconds"]) > 0
    assert steady["complete"] is True
    assert steady["job_latency_seconds"]["count"] == count
    assert steady["creation_lateness_seconds"]["count"] == count
    assert steady["training_jobs_running"]["running"] == count
    assert steady["operator_peak_rss_mb"] > 0


def test_steady_plain_phase_runs_the_same_stream_through_the_plain_client(report: dict[str, Any]) -> None:
    steady = report["phases"]["steady_plain"]
    count = steady["training_jobs"]
    assert steady["who"] == "plain" and count == report["phases"]["steady"]["training_jobs"]
    assert steady["complete"] is True
    assert steady["job_latency_seconds"]["count"] == count
    assert "training_jobs_running" not in steady  # the plain client writes no status
    requests = steady["window_total"]["plain_requests"]
    assert requests["by_verb"] == {"create": count * children_per_training_job()}
    assert steady["plain_peak_rss_mb"] > 0


def test_idle_phase_counts_the_operators_requests_exactly(report: dict[str, Any]) -> None:
    idle = report["phases"]["idle"]
    assert idle["all_running_and_ready"] is True
    assert idle["training_jobs_running"] == idle["training_jobs"] == 5
    assert idle["model_deployments_ready"] == idle["model_deployments"] == 2
    at_rest = idle["at_rest"]
    total = at_rest["operator_requests"]["total"]
    assert sum(at_rest["operator_requests"]["by_verb"].values()) == total
    assert idle["operator_requests_per_second"] == pytest.approx(total / idle["window_seconds"], abs=0.001)
    assert idle["operator_cpu_percent_of_a_core"] >= 0
    assert "operator_requests" not in idle["at_rest_without_operator"]
    assert idle["at_rest_without_operator"]["apiserver"]["requests"] > 0


def test_client_check_runs_the_plain_client_with_more_processes(report: dict[str, Any]) -> None:
    check = report["phases"]["client_check"]
    assert [run["processes"] for run in check["runs"]] == [1, 2]
    for run in check["runs"]:
        assert_consistent_burst(run, check["training_jobs"], "plain")
    assert check["rate_vs_first"][0] == 1.0


def test_report_carries_the_machine_load_and_every_target_unjudged(report: dict[str, Any]) -> None:
    assert report["quick"] is True and report["plane"] == "shared"
    assert len(report["machine"]["loadavg_start"]) == len(report["machine"]["loadavg_end"]) == 3
    assert len(report["targets"]) == 6
    assert all(t["met"] is None and t["note"] for t in report["targets"])  # quick sizes are not the issue's
