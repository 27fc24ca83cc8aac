"""The BenchmarkSweep plan: which target deployments exist, which points start, and the status (pure).

Ordered steps like the other controllers'. Every step is safe to repeat: a point whose Job exists is
Running whatever its status said (a crash between creating the Job and writing the status loses
nothing), and the expansion is a pure function of the spec. The grid is fixed when the sweep first
runs: a spec change afterwards is not applied (``observedGeneration`` shows which generation the points
come from).

Children: the expanded ModelDeployments of the active targets are applied (a hand edit is put back)
and pruned once their points ended; a point's ConfigMap and Job are applied when it starts and kept
from then on (they hold its pod's results and logs); the results ConfigMap (``sinks.configMap``) is
applied with every point's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.benchmark import quality_problem
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec, BenchmarkSweepStatus, PointStatus, TargetStatus
from modelfleet_api.constants import BenchmarkSweepPhase, PointPhase
from modelfleet_api.cost import CostStatus
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType

from modelfleet_operator.benchmark import builders
from modelfleet_operator.benchmark.builders import Endpoint, Owner
from modelfleet_operator.benchmark.grid import Point, Target, point_status
from modelfleet_operator.benchmark.policies.best import best_per_slo, best_throughput, slo_verdict
from modelfleet_operator.benchmark.policies.readiness import readiness
from modelfleet_operator.benchmark.policies.results import outcome, unschedulable
from modelfleet_operator.benchmark.policies.schedule import ENDED, points_to_start
from modelfleet_operator.benchmark.policies.schedule import plan as schedule
from modelfleet_operator.benchmark.policies.search import advance
from modelfleet_operator.common.cost import total_cost
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.plan import ChildKey, Draft, Event, Plan, key_of
from modelfleet_operator.common.references import NOTHING_NAMED, Lookup

Manifest = dict[str, Any]
FINISHED = (BenchmarkSweepPhase.SUCCEEDED, BenchmarkSweepPhase.FAILED)
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


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What a sweep pass read from the indexes."""

    jobs: Mapping[int, Manifest] = field(default_factory=dict)
    """Benchmark Job of each point that has one."""
    pods: list[Manifest] = field(default_factory=list)
    """The benchmark Jobs' pods."""
    deployments: Mapping[str, Manifest | None] = field(default_factory=dict)
    """Each target's ModelDeployment by name (None: absent), owned or referenced."""
    children: frozenset[ChildKey] = frozenset()
    runtime_account_exists: bool = True
    references: Lookup = NOTHING_NAMED
    """The ModelDeployments the targets name and what the templates' deployments need, and which of
    them are missing."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    image: str
    """Image of the benchmark Jobs unless the spec names one."""
    identity: RuntimeIdentity
    ready_timeout: timedelta


@dataclass
class _Planner:
    owner: Owner
    spec: BenchmarkSweepSpec
    targets: list[Target]
    grid: dict[int, Point]
    observed: Observed
    settings: Settings
    draft: Draft[BenchmarkSweepStatus]
    points: list[PointStatus] = field(default_factory=list)
    ready: set[str] = field(default_factory=set)
    apply: list[Manifest] = field(default_factory=list)
    requeue_at: datetime | None = None

    @property
    def status(self) -> BenchmarkSweepStatus:
        return self.draft.status

    @property
    def now(self) -> datetime:
        return self.draft.now

    def end_point(
        self, point: PointStatus, phase: PointPhase, reason: str | None, message: str | None
    ) -> None:
        point.phase, point.reason, point.message = phase, reason, message
        if phase is PointPhase.FAILED and reason is not None:
            text = f"point {point.index} ({point.target} {point.load}): {message}"
            self.draft.events.append(Event(type="Warning", reason=reason, message=text))

    # ---- steps ----------------------------------------------------------------------------------
    def load_points(self) -> bool:
        """The points as stored, or the expanded grid on the first pass."""
        if self.status.points:
            self.points = [point.model_copy() for point in self.status.points]
            return False
        self.status.observed_generation = self.draft.generation
        self.status.points_total = len(self.grid)
        self.points = [point_status(p) for p in self.grid.values()]
        return False

    def finished(self) -> bool:
        """A finished sweep only lets its expanded deployments go (not applying them prunes them)."""
        return self.status.phase in FINISHED

    def observe_jobs(self) -> bool:
        """Points whose Job exists are Running; finished Jobs give their outcome. A running point whose
        pod the scheduler cannot place says so (``PointsScheduled``): it waits for room, it is not
        failed, since a node may free up or be added."""
        unplaced: list[str] = []
        for point in self.points:
            job = self.observed.jobs.get(point.index)
            if point.phase in ENDED or job is None:
                continue
            point.phase = PointPhase.RUNNING
            name = job["metadata"]["name"]
            pods = [
                p for p in self.observed.pods if (p["metadata"].get("labels") or {}).get("job-name") == name
            ]
            ended = outcome(job, pods, builders.BENCH_CONTAINER)
            if ended is None:
                unplaced += [f"point {point.index}: {why}" for why in unschedulable(pods)]
                continue
            if ended.metrics is not None:
                for metric, value in ended.metrics:
                    setattr(point, metric, value)
            self.end_point(point, ended.phase, ended.reason, ended.message)
        if unplaced:
            asked = self.spec.client_resources
            message = (
                f"{'; '.join(unplaced)}. Each benchmark pod requests {asked.cpu} CPU and {asked.memory} of "
                "memory (spec.clientResources); the points wait until a node has room."
            )
            self.draft.condition(c.COND_POINTS_SCHEDULED, False, c.REASON_UNSCHEDULABLE, message)
        else:
            self.draft.drop_condition(c.COND_POINTS_SCHEDULED)
        return False

    def search(self) -> bool:
        """With ``load.search``: the next point of every search whose previous point ended, and the
        frontier so far (``policies.search``)."""
        step = advance(self.spec, self.targets, self.points)
        for point in step.new_points:
            self.grid[point.index] = point
            self.points.append(point_status(point))
        self.status.frontier = step.frontier
        return False

    def wait_for_prerequisites(self) -> bool:
        """Pending points start only once the benchmark Jobs' runtime ServiceAccount and every object
        the spec names exist (a referenced ModelDeployment, a Secret or claim a template needs). Until
        then no target is brought up and the targets not Ready yet are forgotten, so their ready
        timeout starts afresh once everything is there."""
        if not any(p.phase is PointPhase.PENDING for p in self.points):
            return False
        namespace = self.owner.namespace
        references = self.draft.references_ready(self.observed.references, namespace)
        exists = self.observed.runtime_account_exists
        account = self.draft.service_account_ready(self.settings.identity, exists, namespace)
        if references and account:
            return False
        self.status.targets = [t for t in self.status.targets if t.ready]
        return True

    def ensure_targets(self) -> bool:
        """The active targets' deployments, which of them are Ready, the points of targets that cannot
        become Ready failed; expanded deployments whose points all ended are let go."""
        by_deployment = {t.deployment: t for t in self.targets}
        scheduled = schedule(self.points, list(by_deployment), self.spec.max_parallel_points)
        target_status = {t.deployment: t for t in self.status.targets}
        waiting: list[str] = []
        for deployment in scheduled.active:
            target = by_deployment[deployment]
            if target.owned:
                self.apply.append(builders.model_deployment(self.owner, target))
            found = self.observed.deployments.get(deployment)
            entry = target_status.setdefault(
                deployment, TargetStatus(name=target.name, deployment=deployment, waiting_since=self.now)
            )
            since = entry.waiting_since or self.now
            verdict = readiness(
                found,
                name=deployment,
                owned=target.owned,
                waiting_since=since,
                now=self.now,
                timeout=self.settings.ready_timeout,
                track=target.track,
            )
            entry.ready = verdict.ready
            if verdict.ready:
                self.ready.add(deployment)
            elif verdict.failure_reason is not None:
                for point in self.points:
                    if point.deployment == deployment and point.phase is PointPhase.PENDING:
                        self.end_point(point, PointPhase.FAILED, verdict.failure_reason, verdict.message)
            else:
                waiting.append(verdict.message)
                self._deadline(since + self.settings.ready_timeout)
        finished = schedule(self.points, list(by_deployment), 1).finished
        let_go = {d for d in finished if by_deployment[d].owned}
        self.apply = [
            m for m in self.apply if not (m["kind"] == "ModelDeployment" and m["metadata"]["name"] in let_go)
        ]
        for deployment in let_go & set(target_status):
            target_status[deployment].ready = False
        self.status.targets = [
            target_status[t.deployment].model_copy(update={"name": t.name})
            for t in self.targets
            if t.deployment in target_status
        ]
        if waiting:
            self.draft.condition(c.COND_TARGETS_READY, False, c.REASON_WAITING_FOR_TARGETS, " ".join(waiting))
        elif self.ready:
            message = "Every target being measured is Ready."
            self.draft.condition(c.COND_TARGETS_READY, True, c.REASON_TARGETS_READY, message)
        return False

    def start_points(self) -> bool:
        image = self.spec.image or self.settings.image
        for point in points_to_start(self.points, self.ready, self.spec.max_parallel_points):
            grid_point = self.grid[point.index]
            deployment = self.observed.deployments.get(point.deployment or "")
            assert deployment is not None  # ready targets were observed
            endpoint = endpoint_of(deployment, grid_point.target.track)
            record_lineage(point, deployment, grid_point.target.track)
            unscorable = quality_problem(self.spec.quality, builders.protocol(self.spec, endpoint.engine))
            if unscorable is not None:
                reason = c.REASON_POINT_QUALITY_NEEDS_OPENAI
                self.end_point(
                    point, PointPhase.FAILED, reason, f"{unscorable} ({endpoint.engine} speaks it)"
                )
                continue
            config = builders.runtime_config(self.owner, self.spec, grid_point, endpoint)
            self.apply.append(builders.point_config_map(self.owner, grid_point, config))
            job = builders.point_job(
                self.owner,
                grid_point,
                image=image,
                api_key_secret=endpoint.api_key_secret,
                identity=self.settings.identity,
                pod_template=self.spec.pod_template,
                claims=builders.tokenizer_claims(self.spec, endpoint),
                resources=self.spec.client_resources,
            )
            self.apply.append(job)
            point.phase = PointPhase.RUNNING
        return False

    def _deadline(self, moment: datetime) -> None:
        self.requeue_at = moment if self.requeue_at is None else min(self.requeue_at, moment)

    # ---- status ---------------------------------------------------------------------------------
    def account_cost(self) -> None:
        """Each created deployment's cost as it last reported, and their sum (``status.cost``)."""
        by_deployment = {t.deployment: t for t in self.status.targets}
        for target in self.targets:
            found = self.observed.deployments.get(target.deployment) if target.owned else None
            reported = ((found or {}).get("status") or {}).get("cost")
            entry = by_deployment.get(target.deployment)
            if reported and entry is not None:
                entry.cost = CostStatus.model_validate(reported)
        self.status.cost = total_cost([t.cost for t in self.status.targets if t.cost is not None])

    def summarize(self) -> None:
        self.account_cost()
        points = self.points
        status = self.status
        done = sum(p.phase in ENDED for p in points)
        status.points = points
        status.points_done = done
        status.points_total = len(points)
        status.progress = f"{done}/{len(points)}"
        floors = self.spec.quality.floors if self.spec.quality is not None else {}
        status.best_per_slo = best_per_slo(points, self.spec.slos, floors)
        status.best_throughput = best_throughput(points)
        verdict = slo_verdict(points, self.spec.slos, floors)
        if verdict is None:
            self.draft.drop_condition(c.COND_SLOS_MET)
        else:
            self.draft.condition(c.COND_SLOS_MET, verdict.status, verdict.reason, verdict.message)
        if status.phase in FINISHED:
            return
        self._sinks()
        if done < len(points):
            started = any(
                p.phase in (PointPhase.RUNNING, PointPhase.SUCCEEDED) or p.reason in JOB_REASONS
                for p in points
            )
            phase = BenchmarkSweepPhase.RUNNING if started else BenchmarkSweepPhase.DEPLOYING
            waiting = self.draft.waiting_for_service_account() or self.draft.waiting_for_references()
            if not started and waiting:
                phase = BenchmarkSweepPhase.PENDING
            status.phase = phase
            return
        succeeded = sum(p.phase is PointPhase.SUCCEEDED for p in points)
        status.completion_time = self.now
        if succeeded:
            status.phase = BenchmarkSweepPhase.SUCCEEDED
            failed = (
                f", {len(points) - succeeded} failed (see status.points)." if succeeded < len(points) else "."
            )
            message = f"{succeeded} of {len(points)} points measured{failed}"
            self.draft.condition(c.COND_COMPLETE, True, c.REASON_ALL_POINTS_MEASURED, message)
        else:
            status.phase = BenchmarkSweepPhase.FAILED
            message = f"All {len(points)} points failed; each point's reason and message say why."
            self.draft.condition(c.COND_FAILED, True, c.REASON_NO_POINT_SUCCEEDED, message)

    def _sinks(self) -> None:
        """The results ConfigMap, with every point's status, and the SinksWritten condition.

        The per-point sinks (blob, Pushgateway, MLflow) are written by each benchmark pod, which reports
        where its files went (``resultsUri``) and which sinks failed (``sinkErrors``) with its figures.
        SinksWritten is True while every sink took every measured point, False naming the points whose
        sinks failed; failed points ran no sink and do not count."""
        sinks = self.spec.sinks
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
        parts: list[str] = []
        if sinks.config_map:
            name = self.owner.names.results_config_map
            self.apply.append(builders.results_config_map(self.owner, self.points, self.spec.slos))
            self.status.results_config_map = name
            self.status.plot = builders.plot_link(self.owner)
            ended = sum(p.phase in ENDED for p in self.points)
            parts.append(f"ConfigMap {name} holds the results of {ended} of {len(self.points)} points.")
        measured = [p for p in self.points if p.phase is PointPhase.SUCCEEDED]
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
            self.draft.condition(
                c.COND_SINKS_WRITTEN, False, c.REASON_SINK_FAILED, " ".join([message, *parts])
            )
            return
        folder = builders.results_folder_uri(self.owner, self.spec)
        if folder is not None:
            parts.append(f"Result files are under {folder}/point-<index> (status.points[].resultsUri).")
        if per_point:
            parts.append(f"{', '.join(per_point)}: all {len(measured)} measured points written.")
        self.draft.condition(c.COND_SINKS_WRITTEN, True, c.REASON_SINKS_WRITTEN, " ".join(parts))


def plan(
    owner: Owner,
    spec: BenchmarkSweepSpec,
    targets: list[Target],
    grid: dict[int, Point],
    generation: int | None,
    status: BenchmarkSweepStatus,
    observed: Observed,
    now: datetime,
    settings: Settings,
) -> Plan[BenchmarkSweepStatus]:
    draft = Draft(status, now, generation)
    planner = _Planner(owner, spec, targets, grid, observed, settings, draft)
    steps = (
        planner.load_points,
        planner.finished,
        planner.observe_jobs,
        planner.search,
        planner.wait_for_prerequisites,
        planner.ensure_targets,
        planner.start_points,
    )
    held = False
    for step in steps:
        if step():
            held = step == planner.wait_for_prerequisites
            break
    planner.summarize()
    owned = {t.deployment for t in targets if t.owned}
    keep = {key for key in observed.children if not (key[0] == "ModelDeployment" and key[1] in owned)}
    if held:
        keep = set(observed.children)
    keep -= {key_of(m) for m in planner.apply}
    return Plan(
        status=status,
        apply=tuple(planner.apply),
        keep=frozenset(keep),
        events=tuple(draft.events),
        requeue_at=planner.requeue_at,
    )


def endpoint_of(deployment: Manifest, track: str | None = None) -> Endpoint:
    """How to reach a Ready ModelDeployment (or one of its tracks, through the track's Service named
    ``<name>-<track>`` beside the endpoint's), from its spec and status. A deployment the KEDA HTTP
    add-on routes (``status.interceptor``) is reached through the interceptor, with its ``Host``: a
    request there is held while the deployment is at zero and wakes it, where one sent to the Service
    would fail. A track is measured once it serves, through its own Service, which the add-on does not
    route."""
    spec = ModelDeploymentSpec.model_validate(deployment["spec"])
    status = deployment.get("status") or {}
    name = deployment["metadata"]["name"]
    url = status["endpoint"]
    engine = spec.engine.type
    interceptor = status.get("interceptor") if track is None else None
    if track is not None:
        url = url.replace(f"//{name}.", f"//{name}-{track}.", 1)
        if track == c.TRACK_CANARY and spec.canary is not None and spec.canary.engine is not None:
            engine = spec.canary.engine.type
    return Endpoint(
        url=interceptor["url"] if interceptor else url,
        host=interceptor["host"] if interceptor else None,
        service_url=url if interceptor else None,
        served_model=status.get("servedModel") or spec.served_model_name or name,
        engine=EngineType(engine),
        tokenizer=served_model_uri(deployment, spec, track),
        api_key_secret=spec.api_key_secret,
    )


def _served(deployment: Manifest, track: str | None) -> Manifest:
    status = deployment.get("status") or {}
    found: Manifest = (
        ((status.get("canary") or {}).get("model") or {})
        if track == c.TRACK_CANARY
        else status.get("model") or {}
    )
    return found


def record_lineage(point: PointStatus, deployment: Manifest, track: str | None) -> None:
    """Which model (and TrainingJob) the point measures, as the deployment resolved it."""
    served = _served(deployment, track)
    point.model_uri = served.get("uri")
    point.adapter_uri = served.get("adapterUri")
    job = served.get("trainingJob")
    point.training_job = f"{job['name']} (uid {job['uid']})" if job else None


def served_model_uri(deployment: Manifest, spec: ModelDeploymentSpec, track: str | None = None) -> str:
    """The (base) model a track serves: resolved in its status, else named by the spec."""
    resolved = _served(deployment, track).get("uri")
    named = spec.canary.model if track == c.TRACK_CANARY and spec.canary and spec.canary.model else spec.model
    uri = resolved or named.uri
    assert uri is not None, "a Ready deployment has resolved its model"
    return str(uri)
