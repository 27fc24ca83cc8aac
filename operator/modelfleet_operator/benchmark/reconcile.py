"""The BenchmarkSweep reconcile: observe points and targets, decide with the policies, act, report.

``reconcile`` runs a short list of ensure-steps in order (KAITO's shape); a step that must wait
returns True and the rest are skipped until the next pass. Status is drafted on a copy and written
only when it differs from what was read; events are posted only after that write succeeded.

Every step is safe to repeat: a point whose Job exists is Running whatever its status said (a crash
between creating the Job and writing the status loses nothing), children are created if absent, and
the expansion is a pure function of the spec. The grid is fixed when the sweep first runs: a spec
change afterwards is not applied (``observedGeneration`` shows which generation the points come from).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelfleet_api import API_VERSION
from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import BenchmarkSweep, BenchmarkSweepSpec, PointStatus, TargetStatus
from modelfleet_api.constants import BenchmarkSweepPhase, PointPhase
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType

from modelfleet_operator.benchmark import builders
from modelfleet_operator.benchmark.builders import Endpoint, Owner
from modelfleet_operator.benchmark.grid import Point, Target, expand_points, expand_targets
from modelfleet_operator.benchmark.policies.best import best_per_slo, best_throughput
from modelfleet_operator.benchmark.policies.readiness import DEFAULT_READY_TIMEOUT, readiness
from modelfleet_operator.benchmark.policies.results import outcome
from modelfleet_operator.benchmark.policies.schedule import ENDED, plan, points_to_start
from modelfleet_operator.common import reconcile as common
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.reconcile import PostEvent
from modelfleet_operator.conditions import rfc3339
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Kube, Manifest

logger = logging.getLogger(__name__)

KIND = "BenchmarkSweep"
MD_KIND = "ModelDeployment"
FINISHED = (BenchmarkSweepPhase.SUCCEEDED.value, BenchmarkSweepPhase.FAILED.value)
WARNING_REASONS = frozenset(
    {
        c.REASON_INVALID_SPEC,
        c.REASON_TARGET_NOT_FOUND,
        c.REASON_TARGET_FAILED,
        c.REASON_SINK_FAILED,
        c.REASON_POINT_JOB_FAILED,
        c.REASON_POINT_RESULT_MISSING,
        c.REASON_POINT_RESULT_UNPARSEABLE,
        c.REASON_POINT_TARGET_NOT_READY,
        c.REASON_NO_POINT_SUCCEEDED,
        c.REASON_SERVICE_ACCOUNT_NOT_FOUND,
    }
)

SINK_FAILURES_LISTED = 3
"""Points with failed sinks named in the SinksWritten message (every one has its own sinkErrors)."""

JOB_REASONS = frozenset(
    {
        c.REASON_POINT_JOB_FAILED,
        c.REASON_POINT_RESULT_MISSING,
        c.REASON_POINT_RESULT_UNPARSEABLE,
    }
)
"""Reasons of failed points that ran a benchmark Job (the others failed before one started)."""


@dataclass
class Pass(common.Pass[Owner, BenchmarkSweepSpec]):
    """One reconcile pass over one sweep: what was read and the status being drafted."""

    targets: list[Target] = field(default_factory=list)
    points: list[PointStatus] = field(default_factory=list)
    grid: dict[int, Point] = field(default_factory=dict)
    deployments: dict[str, Manifest | None] = field(default_factory=dict)
    """Observed ModelDeployment of each target deployment (None: absent)."""
    ready: set[str] = field(default_factory=set)

    def end_point(
        self, point: PointStatus, phase: PointPhase, reason: str | None, message: str | None
    ) -> None:
        point.phase, point.reason, point.message = phase, reason, message
        if phase is PointPhase.FAILED and reason is not None:
            self.events.append(
                ("Warning", reason, f"point {point.index} ({point.target} {point.load}): {message}")
            )


class BenchmarkSweepReconciler:
    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        post_event: PostEvent,
        clock: Callable[[], datetime] = common.utcnow,
        ready_timeout: timedelta = DEFAULT_READY_TIMEOUT,
    ) -> None:
        self._kube = kube
        self._config = config
        self._status = common.StatusWriter(kube, KIND, post_event, WARNING_REASONS)
        self._clock = clock
        self._ready_timeout = ready_timeout

    def forget(self, uid: str) -> None:
        """Nothing is kept in memory per sweep: its status holds the points."""

    # ---- entry point ----------------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> None:
        body = self._status.read(namespace, name)
        if body is None:
            return
        now = self._clock()
        parsed = self._status.parse(body, now, BenchmarkSweepPhase.FAILED.value, _read)
        if parsed is None:
            return
        sweep, targets = parsed
        run = Pass.start(body, Owner.of(sweep), sweep.spec, now)
        if run.recover_from_invalid_spec():
            run.draft["phase"] = BenchmarkSweepPhase.PENDING.value
        run.targets = targets
        run.grid = {p.index: p for p in expand_points(targets, sweep.spec)}
        steps: tuple[Callable[[Pass], bool], ...] = (
            self._load_points,
            self._finished,
            self._observe_jobs,
            self._wait_for_service_account,
            self._ensure_targets,
            self._start_points,
        )
        for step in steps:
            if step(run):
                break
        self._summarize(run)
        self._status.flush(run)

    # ---- steps ----------------------------------------------------------------------------------
    def _load_points(self, run: Pass) -> bool:
        """The points as stored, or the expanded grid on the first pass."""
        stored = run.draft.get("points") or []
        if stored:
            run.points = [PointStatus.model_validate(p) for p in stored]
            return False
        run.draft["observedGeneration"] = run.generation
        run.draft["pointsTotal"] = len(run.grid)
        run.points = [
            PointStatus(
                index=p.index,
                target=p.target.name,
                deployment=p.target.deployment,
                load=p.load.label,
                input_tokens=p.lengths.input_tokens if p.lengths else None,
                output_tokens=p.lengths.output_tokens if p.lengths else None,
            )
            for p in run.grid.values()
        ]
        return False

    def _finished(self, run: Pass) -> bool:
        """A finished sweep only makes sure its expanded deployments are gone."""
        if run.draft.get("phase") not in FINISHED:
            return False
        self._delete_deployments(run, [t.deployment for t in run.targets if t.owned])
        return True

    def _observe_jobs(self, run: Pass) -> bool:
        """Mark points whose Job exists Running, and record the outcome of finished Jobs."""
        selector = f"{c.LABEL_BENCHMARK_SWEEP}={run.owner.name},{c.LABEL_COMPONENT}={c.COMPONENT_BENCHMARK}"
        jobs = {
            j["metadata"]["labels"].get(c.LABEL_SWEEP_POINT): j
            for j in self._kube.list("batch/v1", "Job", run.owner.namespace, label_selector=selector)
        }
        if not any(jobs.get(str(p.index)) for p in run.points if p.phase not in ENDED):
            return False
        pods = self._kube.list("v1", "Pod", run.owner.namespace, label_selector=selector)
        for point in run.points:
            job = jobs.get(str(point.index))
            if point.phase in ENDED or job is None:
                continue
            point.phase = PointPhase.RUNNING
            job_pods = [p for p in pods if p["metadata"]["labels"].get("job-name") == job["metadata"]["name"]]
            ended = outcome(job, job_pods, builders.BENCH_CONTAINER)
            if ended is None:
                continue
            if ended.metrics is not None:
                for name, value in ended.metrics:
                    setattr(point, name, value)
            run.end_point(point, ended.phase, ended.reason, ended.message)
        return False

    def _wait_for_service_account(self, run: Pass) -> bool:
        """Pending points start only once the benchmark Jobs' runtime ServiceAccount exists. Until then
        no target is brought up (no GPUs held for a benchmark that cannot run) and the targets not Ready
        yet are forgotten, so their ready timeout starts afresh once the account is there."""
        if not any(p.phase is PointPhase.PENDING for p in run.points):
            return False
        if run.service_account_ready(self._kube, self._identity(run)):
            return False
        run.draft["targets"] = [t for t in run.draft.get("targets") or [] if t.get("ready")]
        return True

    def _ensure_targets(self, run: Pass) -> bool:
        """Create the active targets' deployments, note which are Ready, fail the points of targets
        that cannot become Ready, and delete expanded deployments whose points all ended."""
        by_deployment = {t.deployment: t for t in run.targets}
        scheduled = plan(run.points, [t.deployment for t in run.targets], run.spec.max_parallel_points)
        owned = self._owned_deployments(run)
        target_status = {t["deployment"]: t for t in run.draft.get("targets") or []}
        waiting: list[str] = []
        for deployment in scheduled.active:
            target = by_deployment[deployment]
            found = owned.get(deployment) if target.owned else self._get_deployment(run, deployment)
            if found is None and target.owned:
                found, _ = self._kube.create_if_absent(builders.model_deployment(run.owner, target))
            run.deployments[deployment] = found
            entry = target_status.setdefault(deployment, {"waitingSince": rfc3339(run.now)})
            since = datetime.fromisoformat(entry.get("waitingSince") or rfc3339(run.now))
            verdict = readiness(
                found,
                name=deployment,
                owned=target.owned,
                waiting_since=since,
                now=run.now,
                timeout=self._ready_timeout,
            )
            entry["ready"] = verdict.ready
            if verdict.ready:
                run.ready.add(deployment)
            elif verdict.failure_reason is not None:
                for point in run.points:
                    if point.deployment == deployment and point.phase is PointPhase.PENDING:
                        run.end_point(point, PointPhase.FAILED, verdict.failure_reason, verdict.message)
            else:
                waiting.append(verdict.message)
        finished = [d for d in plan(run.points, list(by_deployment), 1).finished if by_deployment[d].owned]
        self._delete_deployments(run, [d for d in finished if d in owned])
        for deployment in finished:
            if deployment in target_status:
                target_status[deployment]["ready"] = False
        run.draft["targets"] = [
            TargetStatus.model_validate(
                {"name": t.name, "deployment": t.deployment, **target_status[t.deployment]}
            ).to_wire()
            for t in run.targets
            if t.deployment in target_status
        ]
        if waiting:
            run.condition(c.COND_TARGETS_READY, False, c.REASON_WAITING_FOR_TARGETS, " ".join(waiting))
        elif run.ready:
            run.condition(
                c.COND_TARGETS_READY, True, c.REASON_TARGETS_READY, "Every target being measured is Ready."
            )
        return False

    def _start_points(self, run: Pass) -> bool:
        image = run.spec.image or self._config.serving_image
        identity = self._identity(run)
        for point in points_to_start(run.points, run.ready, run.spec.max_parallel_points):
            grid_point = run.grid[point.index]
            deployment = run.deployments[point.deployment or ""]
            assert deployment is not None  # ready targets were observed
            endpoint = _endpoint(deployment)
            config = builders.runtime_config(run.owner, run.spec, grid_point, endpoint)
            self._kube.create_if_absent(builders.point_config_map(run.owner, grid_point, config))
            self._kube.create_if_absent(
                builders.point_job(
                    run.owner,
                    grid_point,
                    image=image,
                    api_key_secret=endpoint.api_key_secret,
                    identity=identity,
                )
            )
            point.phase = PointPhase.RUNNING
        return False

    # ---- status ---------------------------------------------------------------------------------
    def _summarize(self, run: Pass) -> None:
        if not run.points:
            return
        points = run.points
        done = sum(p.phase in ENDED for p in points)
        run.draft["points"] = [p.to_wire() for p in points]
        run.draft["pointsDone"] = done
        run.draft["pointsTotal"] = len(points)
        run.draft["progress"] = f"{done}/{len(points)}"
        run.draft["bestPerSlo"] = [b.to_wire() for b in best_per_slo(points, run.spec.slos)]
        best = best_throughput(points)
        if best is None:
            run.draft.pop("bestThroughput", None)
        else:
            run.draft["bestThroughput"] = best.to_wire()
        if run.draft.get("phase") in FINISHED:
            return
        self._write_sinks(run)
        if done < len(points):
            started = any(
                p.phase in (PointPhase.RUNNING, PointPhase.SUCCEEDED) or p.reason in JOB_REASONS
                for p in points
            )
            phase = BenchmarkSweepPhase.RUNNING if started else BenchmarkSweepPhase.DEPLOYING
            if not started and run.waiting_for_service_account():
                phase = BenchmarkSweepPhase.PENDING
            run.draft["phase"] = phase.value
            return
        succeeded = sum(p.phase is PointPhase.SUCCEEDED for p in points)
        run.draft["completionTime"] = rfc3339(run.now)
        if succeeded:
            run.draft["phase"] = BenchmarkSweepPhase.SUCCEEDED.value
            run.condition(
                c.COND_COMPLETE,
                True,
                c.REASON_ALL_POINTS_MEASURED,
                f"{succeeded} of {len(points)} points measured"
                + (
                    f", {len(points) - succeeded} failed (see status.points)."
                    if succeeded < len(points)
                    else "."
                ),
            )
        else:
            run.draft["phase"] = BenchmarkSweepPhase.FAILED.value
            run.condition(
                c.COND_FAILED,
                True,
                c.REASON_NO_POINT_SUCCEEDED,
                f"All {len(points)} points failed; each point's reason and message say why.",
            )

    def _write_sinks(self, run: Pass) -> None:
        """The results ConfigMap, rewritten whenever a point ended, and the SinksWritten condition.

        The per-point sinks (blob, Pushgateway, MLflow) are written by each benchmark pod, which reports
        where its files went (``resultsUri``) and which sinks failed (``sinkErrors``) with its figures.
        SinksWritten is True while every sink took every measured point, False naming the points whose
        sinks failed; failed points ran no sink and do not count."""
        sinks = run.spec.sinks
        per_point = [
            name
            for name, configured in (
                ("Blob", sinks.blob_uri),
                ("Pushgateway", sinks.pushgateway),
                ("MLflow", sinks.mlflow),
            )
            if configured is not None
        ]
        if not sinks.config_map and not per_point:
            return
        parts = [self._write_results_config_map(run)] if sinks.config_map else []
        measured = [p for p in run.points if p.phase is PointPhase.SUCCEEDED]
        failed = [p for p in measured if p.sink_errors]
        if failed:
            listed = "; ".join(
                f"point {p.index} ({p.target} {p.load}): {', '.join(p.sink_errors or [])}"
                for p in failed[:SINK_FAILURES_LISTED]
            )
            more = len(failed) - SINK_FAILURES_LISTED
            listed += f"; and {more} more" if more > 0 else ""
            message = (
                f"Sinks failed for {len(failed)} of {len(measured)} measured points: {listed}. "
                "Their figures are in status.points (sinkErrors there too)."
            )
            run.condition(c.COND_SINKS_WRITTEN, False, c.REASON_SINK_FAILED, " ".join([message, *parts]))
            return
        folder = builders.results_folder_uri(run.owner, run.spec)
        if folder is not None:
            parts.append(f"Result files are under {folder}/point-<index> (status.points[].resultsUri).")
        if per_point:
            parts.append(f"{', '.join(per_point)}: all {len(measured)} measured points written.")
        run.condition(c.COND_SINKS_WRITTEN, True, c.REASON_SINKS_WRITTEN, " ".join(parts))

    def _write_results_config_map(self, run: Pass) -> str:
        """Create or update ``<sweep>-results`` when a point ended since the last status; what it holds."""
        old_points = [PointStatus.model_validate(p) for p in run.written.get("points") or []]
        ended_before = sum(p.phase in ENDED for p in old_points)
        ended_now = sum(p.phase in ENDED for p in run.points)
        name = run.owner.names.results_config_map
        if ended_now != ended_before or run.draft.get("resultsConfigMap") != name:
            manifest = builders.results_config_map(run.owner, run.points)
            existing, created = self._kube.create_if_absent(manifest)
            if not created and existing.get("data") != manifest["data"]:
                self._kube.patch("v1", "ConfigMap", name, run.owner.namespace, {"data": manifest["data"]})
            run.draft["resultsConfigMap"] = name
        return f"ConfigMap {name} holds the results of {ended_now} of {len(run.points)} points."

    def _identity(self, run: Pass) -> RuntimeIdentity:
        return RuntimeIdentity.of(self._config, run.spec.service_account_name)

    # ---- I/O ------------------------------------------------------------------------------------
    def _owned_deployments(self, run: Pass) -> dict[str, Manifest]:
        selector = f"{c.LABEL_BENCHMARK_SWEEP}={run.owner.name},{c.LABEL_COMPONENT}={c.COMPONENT_SERVER}"
        found = self._kube.list(API_VERSION, MD_KIND, run.owner.namespace, label_selector=selector)
        return {d["metadata"]["name"]: d for d in found}

    def _get_deployment(self, run: Pass, name: str) -> Manifest | None:
        return self._kube.get(API_VERSION, MD_KIND, name, run.owner.namespace)

    def _delete_deployments(self, run: Pass, names: list[str]) -> None:
        if not names:
            return
        present = self._owned_deployments(run)
        for name in names:
            if name in present and not present[name]["metadata"].get("deletionTimestamp"):
                self._kube.delete(API_VERSION, MD_KIND, name, run.owner.namespace)


def _read(body: Manifest) -> tuple[BenchmarkSweep, list[Target]]:
    """The sweep and its targets (``InvalidSweep`` when they cannot be expanded)."""
    sweep = BenchmarkSweep.model_validate(body)
    return sweep, expand_targets(Owner.of(sweep).names, sweep.spec)


def _endpoint(deployment: Manifest) -> Endpoint:
    """How to reach a Ready ModelDeployment, from its spec and status."""
    spec = ModelDeploymentSpec.model_validate(deployment["spec"])
    status = deployment.get("status") or {}
    return Endpoint(
        url=status["endpoint"],
        served_model=status.get("servedModel") or spec.served_model_name or deployment["metadata"]["name"],
        engine=EngineType(spec.engine.type),
        tokenizer=spec.model.uri,
        api_key_secret=spec.api_key_secret,
    )
