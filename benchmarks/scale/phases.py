"""The benchmark's phases: burst (operator against the plain client), steady, idle, client check.

By default every measured contestant gets a control plane of its own, started fresh (new etcd) and
stopped after it, so no measurement pays for another's objects or shares the plane's history (watch
caches, etcd size, the controllers' queues); that is also much quicker than deleting thousands of
objects between two measurements. Each plane's logs stay under ``run_dir/NAMESPACE/logs``.

With ``shared_plane`` (``--plane shared``, the default of ``--quick``) every measurement runs on one
plane under ``run_dir/shared``, in its namespace, with an operator or plain client process of its
own, and the namespace is cleared after it. A quick run's seven measurements spent most of their time
starting and stopping planes: the test that proves the benchmark works
(``tests/cluster/test_operator_scale_benchmark.py``) took 147 s and 96 CPU seconds with fresh planes,
73 s and 45 CPU seconds with a shared one (one run each on the idle 2-core machine). Every count stays
exact: the contestants run one after another, each stopped before the next starts, and the audit log is
counted per user and per window; and the next operator, which watches every namespace, finds nothing of
an earlier measurement (see ``_clear``). Its figures are not those of a fresh plane (the plane has a
history), which is why the full benchmark does not share one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scale import audit, load, procstat, server
from benchmarks.scale.contestants import Contestant, start_operator, start_plain
from benchmarks.scale.kubeapi import ApiError, KubeApi
from benchmarks.scale.plane import (
    OPERATOR_ACCOUNT,
    PLAIN_ACCOUNT,
    THROTTLED_COMPONENTS,
    BenchPlane,
    user_of,
)
from benchmarks.scale.recorder import Recorder, Watched, phase_is, wait_until
from benchmarks.scale.workload import (
    API_VERSIONS,
    child_keys,
    child_kinds,
    model_deployment,
    path_of,
    training_job,
)

Json = dict[str, Any]
ACCOUNTS = {"operator": OPERATOR_ACCOUNT, "plain": PLAIN_ACCOUNT}
NAMESPACE_DEFAULTS = frozenset({"default", "kube-root-ca.crt"})
"""What the controllers create in every namespace (a ServiceAccount, the CA bundle ConfigMap)."""


@dataclass(frozen=True)
class Settings:
    workers: int = 4
    """Worker pods per TrainingJob."""
    creator_threads: int = 16
    plain_processes: int = 1
    plain_threads: int = 16
    timeout: float = 900.0
    """Longest wait for any one outcome (all children, all pods Running, ...)."""
    operator_env: dict[str, str] = field(default_factory=dict)


def percentiles(values: Iterable[float]) -> dict[str, float | int | None]:
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "count": int(data.size),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(data.max()), 3),
    }


@dataclass
class Snapshot:
    """Everything a phase compares between two moments."""

    monotonic: float
    wall: float
    load: list[float]
    contestant: procstat.Usage | None
    components: dict[str, float]
    throttled: dict[str, float]
    server: server.ServerCounters
    audit_offset: int


class Bench:
    plane: BenchPlane
    """The control plane of the measurement under way (see ``_plane_for``)."""
    admin: KubeApi
    """The people's side on it: creating TrainingJobs, watching, reading metrics."""

    def __init__(self, run_dir: Path, port_base: int, settings: Settings, shared_plane: bool = False) -> None:
        self.run_dir = run_dir
        self.port_base = port_base
        self.settings = settings
        self.shared_plane = shared_plane
        self._shared_started = False

    @contextmanager
    def _plane_for(self, namespace: str) -> Iterator[None]:
        """The control plane of the measurement in ``namespace``: a new one, stopped after it (its etcd
        data is removed, its logs are kept); with ``shared_plane``, the run's one plane (started by the
        first measurement, stopped by ``close``), where the namespace is deleted after the measurement."""
        if not self.shared_plane:
            self._start_plane(namespace)
            try:
                yield
            finally:
                self._stop_plane()
            return
        if not self._shared_started:
            self._start_plane("shared")
            self._shared_started = True
        yield
        self._clear(namespace)  # not after a failed measurement: the run ends there, and ``close`` stops

    def close(self) -> None:
        """Stops the shared plane, if one was started (a fresh plane is stopped by its measurement)."""
        if self._shared_started:
            self._stop_plane()
            self._shared_started = False

    def _start_plane(self, label: str) -> None:
        print(f"  starting a control plane for {label}", flush=True)
        self.plane = BenchPlane(self.run_dir / label, self.port_base)
        self.plane.start()
        self.admin = KubeApi(self.plane.admin_kubeconfig, pool_size=self.settings.creator_threads + 4)

    def _stop_plane(self) -> None:
        self.plane.stop()
        shutil.rmtree(self.plane.run_dir / "etcd", ignore_errors=True)

    def _clear(self, namespace: str) -> None:
        """Deletes a measurement's namespace on the shared plane, and waits until none of its TrainingJobs,
        ModelDeployments, pods or TrainingJob children is left: the next operator watches every namespace,
        and would reconcile what an earlier measurement left, or carry it in its caches.

        The contestant is stopped by now, so any finalizer left on its TrainingJobs and ModelDeployments
        (kopf's, which operators before ``kopf_fixes.daemon_finalizer`` put on every object with a daemon)
        is removed first, as the admin. Then the namespace is
        deleted (from then on nothing new can be created in it), and every kind the benchmark knows is
        deleted at once, pods without a grace period. Left to the namespace controller (it deletes the
        pods first and the rest on a later pass), a namespace took 11-12 s to go; so did the first
        measurement's children when only their TrainingJobs were deleted (the garbage collector did not
        act on a CRD created just before); this way every namespace was cleared in 0.6-2 s. The namespace
        itself, and what the benchmark does not know of (a ModelDeployment's Deployment), is left to the
        controllers: with its pods gone it holds nothing that runs."""
        started = time.monotonic()
        for kind in ("TrainingJob", "ModelDeployment"):
            path = path_of(API_VERSIONS[kind], kind, namespace)
            for item in self.admin.request("GET", path)["items"]:
                if item["metadata"].get("finalizers"):
                    self.admin.request(
                        "PATCH",
                        f"{path}/{item['metadata']['name']}",
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
        self.admin.request("DELETE", f"/api/v1/namespaces/{namespace}")
        kinds = {
            "TrainingJob": API_VERSIONS["TrainingJob"],
            "ModelDeployment": API_VERSIONS["ModelDeployment"],
            **child_kinds(namespace, self.settings.workers),
            "Pod": API_VERSIONS["Pod"],  # last: the Jobs that would make new ones are gone
        }
        for kind, api_version in kinds.items():
            query = {
                "propagationPolicy": "Background",
                **({"gracePeriodSeconds": "0"} if kind == "Pod" else {}),
            }
            self.admin.request("DELETE", path_of(api_version, kind, namespace), query=query)

        def left() -> list[str]:
            return [
                kind
                for kind, api_version in kinds.items()
                if any(
                    item["metadata"]["name"] not in NAMESPACE_DEFAULTS
                    for item in self.admin.request("GET", path_of(api_version, kind, namespace))["items"]
                )
            ]

        if not wait_until(lambda: not left(), self.settings.timeout):
            raise RuntimeError(f"namespace {namespace}: {', '.join(left())} still there after deletion")
        print(f"  namespace {namespace} cleared in {time.monotonic() - started:.1f} s", flush=True)

    # ---- phases -------------------------------------------------------------------------------------
    def burst(self, size: int, into: Json, save: Callable[[], None]) -> None:
        """``size`` TrainingJobs at once: the plain client first, then the operator, same creator. The
        figures go into ``into`` as they come, and ``save`` is called after each contestant."""
        into["training_jobs"] = size
        into["plain"] = plain = self._burst_one(size, "plain")
        save()
        into["operator"] = operator = self._burst_one(size, "operator")
        into["operator_vs_plain"] = {
            "children_rate": _ratio(operator["children_per_second"], plain["children_per_second"]),
            "p99_latency": _ratio(
                operator["job_latency_seconds"]["p99"], plain["job_latency_seconds"]["p99"]
            ),
        }
        save()

    def steady(self, rate: float, seconds: float, who: str = "operator") -> Json:
        """TrainingJobs at ``rate`` per second for ``seconds``, the operator alone (``who="plain"``: the
        plain client instead, what the API server allows at that rate on this machine)."""
        count = round(rate * seconds)
        namespace = "steady" if who == "operator" else f"steady-{who}"
        operator = who == "operator"
        with self._plane_for(namespace):
            recorder = self._open(namespace, include_training_jobs=operator)
            if operator:
                contestant = start_operator(self.plane, self.settings.operator_env)
            else:
                contestant = start_plain(
                    self.plane, namespace, self.settings.plain_processes, self.settings.plain_threads
                )
            try:
                before = self._snapshot(contestant)
                manifests = [training_job(f"tj-{i:05d}", self.settings.workers) for i in range(count)]
                created = load.paced(self.admin, namespace, manifests, rate, self.settings.creator_threads)
                outcome = self._children_outcome(recorder, namespace, created)
                after = self._snapshot(contestant)
                pods = self._pods_outcome(recorder, count, created)
                running = self._running_outcome(recorder, count, created) if operator else None
                final = self._snapshot(contestant)
                windows = self._window(before, after, who), self._window(before, final, who)
            finally:
                contestant.stop()
                recorder.stop()
        result: Json = {
            "who": who,
            "rate_per_second": rate,
            "seconds": seconds,
            "training_jobs": count,
            "achieved_creation_rate": round(created.rate, 2),
            "creation_lateness_seconds": percentiles(created.late),
            **outcome,
            "pods": pods,
            "window_until_all_children": windows[0],
            "window_total": windows[1],
            f"{who}_peak_rss_mb": _mb(final.contestant.peak_rss_bytes if final.contestant else 0),
        }
        if running is not None:
            result["training_jobs_running"] = running
        return result

    def idle(self, training_jobs: int, deployments: int, settle: float, seconds: float) -> Json:
        """``training_jobs`` Running TrainingJobs and ``deployments`` Ready ModelDeployments, nothing
        changing: what the operator costs at rest, against the same window with the operator stopped."""
        namespace = "idle"
        with self._plane_for(namespace):
            recorder = self._open(namespace, include_training_jobs=True, include_deployments=True)
            self._wait_default_account(namespace)
            contestant = start_operator(self.plane, self.settings.operator_env)
            try:
                started = self._snapshot(contestant)
                objects = [training_job(f"tj-{i:05d}", self.settings.workers) for i in range(training_jobs)]
                objects += [model_deployment(f"md-{i:04d}") for i in range(deployments)]
                created = load.burst(self.admin, namespace, objects, self.settings.creator_threads)
                ready = wait_until(
                    lambda: (
                        recorder.count_reached("TrainingJob") >= training_jobs
                        and recorder.count_reached("ModelDeployment") >= deployments
                    ),
                    self.settings.timeout,
                )
                settled_at = time.monotonic()
                time.sleep(settle)
                before = self._snapshot(contestant)
                time.sleep(seconds)
                after = self._snapshot(contestant)
                peak = after.contestant.peak_rss_bytes if after.contestant else 0
                setup = self._window(started, before, "operator")
                at_rest = self._window(before, after, "operator")
            finally:
                contestant.stop()
            try:
                time.sleep(settle)
                baseline_before = self._snapshot(None)
                time.sleep(seconds)
                without = self._window(baseline_before, self._snapshot(None), None)
            finally:
                recorder.stop()
        requests = at_rest["operator_requests"]["total"]
        cpu = at_rest["contestant_cpu_seconds"]
        return {
            "training_jobs": training_jobs,
            "model_deployments": deployments,
            "all_running_and_ready": ready,
            "training_jobs_running": recorder.count_reached("TrainingJob"),
            "model_deployments_ready": recorder.count_reached("ModelDeployment"),
            "seconds_to_running_and_ready": round(settled_at - created.started, 2),
            "settle_seconds": settle,
            "window_seconds": seconds,
            "operator_requests_per_second": round(requests / seconds, 3),
            "operator_cpu_percent_of_a_core": round(100 * cpu / seconds, 2),
            "operator_peak_rss_mb": _mb(peak),
            "setup": setup,
            "at_rest": at_rest,
            "at_rest_without_operator": without,
            "apiserver_requests_per_second_difference": _difference(
                at_rest["apiserver"]["requests_per_second"],
                without["apiserver"]["requests_per_second"],
            ),
        }

    def client_check(self, size: int, processes: Iterable[int]) -> Json:
        """The plain client's burst rate with several process counts: when more processes do not go
        faster, one process is not the limit, and its rate is what the API server allows."""
        runs = []
        for count in processes:
            result = self._burst_one(size, "plain", plain_processes=count)
            runs.append({"processes": count, **result})
        first = runs[0]["children_per_second"]
        return {
            "training_jobs": size,
            "runs": runs,
            "rate_vs_first": [_ratio(run["children_per_second"], first) for run in runs],
        }

    # ---- one burst ----------------------------------------------------------------------------------
    def _burst_one(self, size: int, who: str, plain_processes: int | None = None) -> Json:
        namespace = f"burst-{size}-{who}" + (f"-{plain_processes}p" if plain_processes else "")
        with self._plane_for(namespace):
            recorder = self._open(namespace, include_training_jobs=(who == "operator"))
            if who == "operator":
                contestant = start_operator(self.plane, self.settings.operator_env)
            else:
                processes = plain_processes or self.settings.plain_processes
                contestant = start_plain(self.plane, namespace, processes, self.settings.plain_threads)
            try:
                before = self._snapshot(contestant)
                manifests = [training_job(f"tj-{i:05d}", self.settings.workers) for i in range(size)]
                created = load.burst(self.admin, namespace, manifests, self.settings.creator_threads)
                outcome = self._children_outcome(recorder, namespace, created)
                after = self._snapshot(contestant)
                pods = self._pods_outcome(recorder, size, created)
                running = self._running_outcome(recorder, size, created) if who == "operator" else None
                final = self._snapshot(contestant)
                windows = self._window(before, after, who), self._window(before, final, who)
            finally:
                contestant.stop()
                recorder.stop()
        result: Json = {
            "namespace": namespace,
            "processes": len(contestant.processes),
            "achieved_creation_rate": round(created.rate, 2),
            **outcome,
            "pods": pods,
            "window_until_all_children": windows[0],
            "window_total": windows[1],
            "peak_rss_mb": _mb(final.contestant.peak_rss_bytes if final.contestant else 0),
        }
        if running is not None:
            result["training_jobs_running"] = running
        latency = outcome["job_latency_seconds"]
        print(
            f"  {namespace}: {outcome['children_seen']}/{outcome['children_expected']} children in "
            f"{outcome['seconds_to_all_children']} s ({outcome['children_per_second']}/s), Job latency p50 "
            f"{latency['p50']} s p99 {latency['p99']} s, peak RSS {result['peak_rss_mb']} MB",
            flush=True,
        )
        return result

    # ---- outcomes -----------------------------------------------------------------------------------
    def _children_outcome(self, recorder: Recorder, namespace: str, created: load.Created) -> Json:
        """Waits until every created TrainingJob has every child; latencies from its creation."""
        keys = {name: child_keys(name, namespace, self.settings.workers) for name in created.at}
        wanted = [key for children in keys.values() for key in children]
        complete = wait_until(lambda: recorder.seen_all(wanted), self.settings.timeout)
        seen = {kind: recorder.added(kind) for kind in {kind for kind, _ in wanted}}
        job_latency, all_latency = [], []
        last = created.started
        for name, children in keys.items():
            times = [seen[kind][child] for kind, child in children if child in seen[kind]]
            job = next((seen["Job"].get(child) for kind, child in children if kind == "Job"), None)
            if job is not None:
                job_latency.append(job - created.at[name])
            if len(times) == len(children):
                all_latency.append(max(times) - created.at[name])
            last = max([last, *times])
        seconds = last - created.started
        seen_count = sum(1 for kind, child in wanted if child in seen[kind])
        return {
            "children_expected": len(wanted),
            "children_seen": seen_count,
            "complete": complete and seen_count == len(wanted),
            "watch_error": recorder.failed,
            "seconds_to_all_children": round(seconds, 2),
            "children_per_second": round(seen_count / seconds, 2) if seconds > 0 else None,
            "job_latency_seconds": percentiles(job_latency),
            "all_children_latency_seconds": percentiles(all_latency),
        }

    def _pods_outcome(self, recorder: Recorder, training_jobs: int, created: load.Created) -> Json:
        """Worker pods (made by the Job controller) until all run: the control plane's own pace."""
        expected = training_jobs * self.settings.workers
        complete = wait_until(lambda: recorder.count_reached("Pod") >= expected, self.settings.timeout)
        added = sorted(recorder.added("Pod").values())
        running = recorder.reached("Pod")
        jobs = recorder.added("Job")
        span = added[-1] - added[0] if len(added) > 1 else 0.0
        # An Indexed Job's pods are named JOB-INDEX-SUFFIX: how long each Job waited for all its pods.
        last_running: dict[str, list[float]] = {}
        for name, at in running.items():
            last_running.setdefault(name.rsplit("-", 2)[0], []).append(at)
        job_to_pods = [
            max(times) - jobs[job]
            for job, times in last_running.items()
            if len(times) == self.settings.workers and job in jobs
        ]
        return {
            "expected": expected,
            "created": len(added),
            "running": len(running),
            "complete": complete,
            "created_per_second": round((len(added) - 1) / span, 2) if span > 0 else None,
            "seconds_to_all_running": round(max(running.values()) - created.started, 2) if running else None,
            "job_to_all_pods_running_seconds": percentiles(job_to_pods),
        }

    def _running_outcome(self, recorder: Recorder, training_jobs: int, created: load.Created) -> Json:
        """TrainingJobs whose status says Running (the operator saw every worker run)."""
        complete = wait_until(
            lambda: recorder.count_reached("TrainingJob") >= training_jobs, self.settings.timeout
        )
        reached = recorder.reached("TrainingJob")
        return {
            "expected": training_jobs,
            "running": len(reached),
            "complete": complete,
            "seconds_to_all_running": round(max(reached.values()) - created.started, 2) if reached else None,
        }

    # ---- measuring ----------------------------------------------------------------------------------
    def _snapshot(self, contestant: Contestant | None) -> Snapshot:
        components = {}
        for name, pid in self.plane.component_pids().items():
            try:
                components[name] = procstat.usage(pid).cpu_seconds
            except OSError:
                continue
        return Snapshot(
            monotonic=time.monotonic(),
            wall=time.time(),
            load=procstat.loadavg(),
            contestant=contestant.usage() if contestant is not None else None,
            components=components,
            throttled={
                name: server.throttled_seconds(self.plane.component_metrics(name))
                for name in THROTTLED_COMPONENTS
            },
            server=server.scrape(self.admin),
            audit_offset=audit.end_offset(self.plane.plane.audit_log),
        )

    def _window(self, before: Snapshot, after: Snapshot, who: str | None) -> Json:
        seconds = after.monotonic - before.monotonic
        window: Json = {
            "seconds": round(seconds, 2),
            "loadavg_before": before.load,
            "loadavg_after": after.load,
            "control_plane_cpu_seconds": {
                name: round(after.components[name] - cpu, 2)
                for name, cpu in before.components.items()
                if name in after.components
            },
            "apiserver": server.delta(before.server, after.server, seconds),
            "client_side_throttled_seconds": {
                name: round(after.throttled[name] - waited, 2) for name, waited in before.throttled.items()
            },
        }
        if who is not None and before.contestant and after.contestant:
            window["contestant_cpu_seconds"] = round(
                after.contestant.cpu_seconds - before.contestant.cpu_seconds, 2
            )
            requests = audit.count(
                self.plane.plane.audit_log,
                user_of(ACCOUNTS[who]),
                before.wall,
                after.wall,
                before.audit_offset,
            )
            window[f"{who}_requests"] = requests.as_dict()
        return window

    # ---- namespaces ---------------------------------------------------------------------------------
    def _open(
        self, namespace: str, include_training_jobs: bool = False, include_deployments: bool = False
    ) -> Recorder:
        """A fresh namespace and a recorder of everything the phase waits for in it."""
        self.admin.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        kinds = [
            Watched(api_version, kind, ignore=NAMESPACE_DEFAULTS)
            for kind, api_version in child_kinds(namespace, self.settings.workers).items()
        ]
        kinds.append(Watched("v1", "Pod", phase_is("Running")))
        if include_training_jobs:
            kinds.append(Watched(API_VERSIONS["TrainingJob"], "TrainingJob", phase_is("Running")))
        if include_deployments:
            kinds.append(Watched(API_VERSIONS["ModelDeployment"], "ModelDeployment", phase_is("Ready")))
        return Recorder(self.admin, namespace, kinds).start()

    def _wait_default_account(self, namespace: str) -> None:
        def exists() -> bool:
            try:
                self.admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
                return True
            except ApiError:
                return False

        if not wait_until(exists, 60):
            raise RuntimeError(f"namespace {namespace} got no default ServiceAccount")


def _ratio(value: float | None, reference: float | None) -> float | None:
    return round(value / reference, 3) if value is not None and reference else None


def _difference(a: object, b: object) -> float | None:
    return round(a - b, 2) if isinstance(a, float | int) and isinstance(b, float | int) else None


def _mb(value: int) -> float:
    return round(value / 2**20, 1)
