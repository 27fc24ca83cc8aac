"""The report: issue 18's targets judged from one run's figures, and the tables printed for people."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

Json = dict[str, Any]
TARGET_BURST = 1000
TARGET_STEADY = (20.0, 60.0)
TARGET_IDLE = (500, 100)


def _judge(name: str, wanted: str, value: float | None, met: bool, measured: bool, note: str) -> Json:
    """``met`` is None when the run did not measure at the target's size, False when it did but the
    figure is missing (nothing finished in time)."""
    if not measured:
        return {"name": name, "target": wanted, "value": None, "met": None, "note": note}
    if value is None:
        return {
            "name": name,
            "target": wanted,
            "value": None,
            "met": False,
            "note": "nothing finished in time",
        }
    return {"name": name, "target": wanted, "value": value, "met": met, "note": ""}


def targets(phases: Json) -> list[Json]:
    """Each target with the figure it is judged on; ``met`` is None when the run did not measure it at
    the target's size (a ``--quick`` run, or a phase left out)."""
    burst: Json = next(
        (b for b in phases.get("burst", []) if b["training_jobs"] == TARGET_BURST and "operator" in b), {}
    )
    no_burst = f"no burst of {TARGET_BURST} in this run"
    # a burst whose operator did not finish is judged on what it did, and fails
    finished = bool(burst) and burst["operator"]["complete"] and burst["plain"]["complete"]
    rate = burst.get("operator_vs_plain", {}).get("children_rate")
    p99 = burst.get("operator_vs_plain", {}).get("p99_latency")
    rss = burst.get("operator", {}).get("peak_rss_mb")
    steady: Json = phases.get("steady") or {}
    steady_measured = (steady.get("rate_per_second"), steady.get("seconds")) == TARGET_STEADY
    steady_p99 = steady.get("job_latency_seconds", {}).get("p99")
    idle: Json = phases.get("idle") or {}
    idle_measured = (idle.get("training_jobs"), idle.get("model_deployments")) == TARGET_IDLE
    requests, cpu = idle.get("operator_requests_per_second"), idle.get("operator_cpu_percent_of_a_core")
    no_idle = "no idle phase of 500 TrainingJobs and 100 ModelDeployments in this run"
    return [
        _judge("burst: children rate vs the plain client", ">= 0.9", rate,
               finished and rate is not None and rate >= 0.9, bool(burst), no_burst),
        _judge("burst: Job latency p99 vs the plain client's", "<= 2.0", p99,
               finished and p99 is not None and p99 <= 2.0, bool(burst), no_burst),
        _judge(f"operator peak RSS at {TARGET_BURST} TrainingJobs (MB)", "< 300", rss,
               rss is not None and rss < 300, bool(burst), no_burst),
        _judge("steady 20/s for 60 s: Job latency p99 (s)", "< 1.0", steady_p99,
               bool(steady.get("complete")) and steady_p99 is not None and steady_p99 < 1.0, steady_measured,
               "no steady phase at 20/s for 60 s in this run"),
        _judge("idle: operator API requests per second", "< 1.0", requests,
               requests is not None and requests < 1.0, idle_measured, no_idle),
        _judge("idle: operator CPU (% of a core)", "< 2.0", cpu, cpu is not None and cpu < 2.0,
               idle_measured, no_idle),
    ]  # fmt: skip


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _requests(window: Json, who: str) -> object:
    return window.get(f"{who}_requests", {}).get("total")


def print_report(report: Json, console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    phases = report["phases"]
    git, machine = report["git"], report["machine"]
    dirty = " (dirty)" if git["dirty"] else ""
    console.print(
        f"operator scale benchmark, {report['started_at']}, commit {git['commit'][:12]}{dirty}, "
        f"load average {machine['loadavg_start']} at the start, {machine['loadavg_end']} at the end"
    )
    if phases.get("burst"):
        table = Table(title="Burst: TrainingJobs created at once; children of every one")
        for column in ("TJs", "who", "children/s", "s to all", "Job p50", "p95", "p99", "pods/s",
                       "CPU s", "RSS MB", "requests/TJ", "load"):  # fmt: skip
            table.add_column(column, justify="right")
        for burst in phases["burst"]:
            size = burst["training_jobs"]
            for who in ("plain", "operator"):
                if who not in burst:
                    continue  # an interrupted run
                row = burst[who]
                latency = row["job_latency_seconds"]
                window = row["window_until_all_children"]
                requests = _requests(window, who)
                table.add_row(
                    str(size), who, _fmt(row["children_per_second"]), _fmt(row["seconds_to_all_children"]),
                    _fmt(latency["p50"]), _fmt(latency["p95"]), _fmt(latency["p99"]),
                    _fmt(row["pods"]["created_per_second"]), _fmt(window.get("contestant_cpu_seconds")),
                    _fmt(row["peak_rss_mb"]), _fmt(requests / size if isinstance(requests, int) else None),
                    _fmt(window["loadavg_before"][0]),
                )  # fmt: skip
            ratios = burst.get("operator_vs_plain", {"children_rate": None, "p99_latency": None})
            table.add_row(
                str(size), "ratio", _fmt(ratios["children_rate"]), "", "", "", _fmt(ratios["p99_latency"])
            )
        console.print(table)
    for key, who in (("steady", "operator"), ("steady_plain", "plain")):
        if not phases.get(key):
            continue
        steady = phases[key]
        table = Table(
            title=f"Steady ({who}): {steady['rate_per_second']:g} TrainingJobs/s for {steady['seconds']:g} s"
        )
        for column in ("achieved/s", "Jobs seen", "Job p50", "p95", "p99", "max", "CPU s", "RSS MB", "load"):
            table.add_column(column, justify="right")
        latency = steady["job_latency_seconds"]
        window = steady["window_until_all_children"]
        table.add_row(
            _fmt(steady["achieved_creation_rate"]), f"{latency['count']}/{steady['training_jobs']}",
            _fmt(latency["p50"]), _fmt(latency["p95"]), _fmt(latency["p99"]), _fmt(latency["max"]),
            _fmt(window.get("contestant_cpu_seconds")), _fmt(steady[f"{who}_peak_rss_mb"]),
            _fmt(window["loadavg_before"][0]),
        )  # fmt: skip
        console.print(table)
    if phases.get("idle"):
        idle = phases["idle"]
        table = Table(
            title=f"Idle: {idle['training_jobs']} Running TrainingJobs, {idle['model_deployments']} Ready "
            f"ModelDeployments, {idle['window_seconds']:g} s"
        )
        for column in ("operator req/s", "CPU % core", "RSS MB", "API server req/s", "without operator",
                       "load"):  # fmt: skip
            table.add_column(column, justify="right")
        table.add_row(
            _fmt(idle["operator_requests_per_second"]), _fmt(idle["operator_cpu_percent_of_a_core"]),
            _fmt(idle["operator_peak_rss_mb"]), _fmt(idle["at_rest"]["apiserver"]["requests_per_second"]),
            _fmt(idle["at_rest_without_operator"]["apiserver"]["requests_per_second"]),
            _fmt(idle["at_rest"]["loadavg_before"][0]),
        )  # fmt: skip
        console.print(table)
    if phases.get("client_check"):
        check = phases["client_check"]
        table = Table(title=f"Plain client check: burst of {check['training_jobs']} with more processes")
        for column in ("processes", "children/s", "vs 1st", "Job p99", "CPU s"):
            table.add_column(column, justify="right")
        for run, ratio in zip(check["runs"], check["rate_vs_first"], strict=True):
            table.add_row(
                str(run["processes"]), _fmt(run["children_per_second"]), _fmt(ratio),
                _fmt(run["job_latency_seconds"]["p99"]),
                _fmt(run["window_until_all_children"].get("contestant_cpu_seconds")),
            )  # fmt: skip
        console.print(table)
    table = Table(title="Issue 18 targets")
    for column in ("target", "wanted", "measured", "met"):
        table.add_column(column)
    for target in report["targets"]:
        met = {True: "yes", False: "NO", None: "-"}[target["met"]]
        table.add_row(
            target["name"],
            target["target"],
            _fmt(target["value"]),
            met if not target["note"] else target["note"],
        )
    console.print(table)
