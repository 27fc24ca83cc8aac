"""The BenchmarkSweep controller: how the engine (``common.reconcile``) reads, observes and plans one.

Reading expands the targets (``InvalidSweep`` when they cannot be); observe reads the point Jobs, their
pods and every target's ModelDeployment (owned or referenced) from the indexes; the decisions are
``benchmark.plan``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import BenchmarkSweep, BenchmarkSweepStatus

from modelfleet_operator.benchmark import plan as planning
from modelfleet_operator.benchmark.builders import Owner
from modelfleet_operator.benchmark.grid import Target, expand_points, expand_targets
from modelfleet_operator.benchmark.policies.readiness import DEFAULT_READY_TIMEOUT
from modelfleet_operator.common.identity import RuntimeIdentity
from modelfleet_operator.common.indexes import Indexes
from modelfleet_operator.common.kinds import BENCHMARK_SWEEP, CONFIG_MAP, JOB, MODEL_DEPLOYMENT
from modelfleet_operator.common.live import Live
from modelfleet_operator.common.plan import Plan
from modelfleet_operator.common.references import sweep_references
from modelfleet_operator.config import OperatorConfig

KIND = "BenchmarkSweep"
WARNING_REASONS = frozenset(
    {
        c.REASON_INVALID_SPEC,
        c.REASON_TARGET_FAILED,
        c.REASON_SINK_FAILED,
        c.REASON_POINT_JOB_FAILED,
        c.REASON_POINT_RESULT_MISSING,
        c.REASON_POINT_RESULT_UNPARSEABLE,
        c.REASON_POINT_TARGET_NOT_READY,
        c.REASON_NO_POINT_SUCCEEDED,
        c.REASON_SERVICE_ACCOUNT_NOT_FOUND,
        c.REASON_REFERENCE_MISSING,
    }
)


@dataclass(frozen=True)
class Sweep:
    """A sweep with its targets expanded."""

    resource: BenchmarkSweep
    targets: list[Target]


class BenchmarkSweepController:
    kind = BENCHMARK_SWEEP
    owner_label = c.LABEL_BENCHMARK_SWEEP
    child_kinds = (CONFIG_MAP, JOB, MODEL_DEPLOYMENT)
    status_model = BenchmarkSweepStatus
    failed_phase = c.BenchmarkSweepPhase.FAILED
    invalid_spec_note = ""
    warning_reasons = WARNING_REASONS

    def __init__(self, config: OperatorConfig, ready_timeout: timedelta = DEFAULT_READY_TIMEOUT) -> None:
        self._config = config
        self._ready_timeout = ready_timeout

    def read(self, body: dict[str, Any]) -> Sweep:
        """The sweep and its targets (``InvalidSweep`` when they cannot be expanded)."""
        sweep = BenchmarkSweep.model_validate(body)
        return Sweep(sweep, expand_targets(Owner.of(sweep).names, sweep.spec))

    def owner(self, resource: Sweep) -> Owner:
        return Owner.of(resource.resource)

    def _identity(self, resource: Sweep) -> RuntimeIdentity:
        return RuntimeIdentity.of(self._config, resource.resource.spec.service_account_name)

    def observe(self, resource: Sweep, children: list[Live], indexes: Indexes) -> planning.Observed:
        owner = self.owner(resource)
        jobs: dict[int, dict[str, Any]] = {}
        owned: dict[str, dict[str, Any]] = {}
        for child in children:
            labels = child.manifest["metadata"].get("labels") or {}
            if child.manifest["kind"] == JOB.kind and labels.get(c.LABEL_COMPONENT) == c.COMPONENT_BENCHMARK:
                point = labels.get(c.LABEL_SWEEP_POINT, "")
                if point.isdigit():
                    jobs[int(point)] = child.manifest
            elif child.manifest["kind"] == MODEL_DEPLOYMENT.kind and not child.deleting:
                owned[child.name] = child.manifest
        deployments = {
            t.deployment: owned.get(t.deployment)
            if t.owned
            else indexes.model_deployment(owner.namespace, t.deployment)
            for t in resource.targets
        }
        pods = [
            pod
            for pod in indexes.pods(self.owner_label, owner.namespace, owner.name)
            if (pod["metadata"].get("labels") or {}).get(c.LABEL_COMPONENT) == c.COMPONENT_BENCHMARK
        ]
        account = self._identity(resource).service_account
        return planning.Observed(
            jobs=jobs,
            pods=pods,
            deployments=deployments,
            children=frozenset((child.manifest["kind"], child.name) for child in children),
            runtime_account_exists=account is None
            or indexes.service_account_exists(owner.namespace, account),
            references=indexes.look_up(sweep_references(resource.resource.spec), owner.namespace),
        )

    def plan(
        self, resource: Sweep, status: BenchmarkSweepStatus, observed: planning.Observed, now: datetime
    ) -> Plan[BenchmarkSweepStatus]:
        spec = resource.resource.spec
        settings = planning.Settings(
            image=self._config.benchmark_image,
            identity=self._identity(resource),
            ready_timeout=self._ready_timeout,
        )
        grid = {p.index: p for p in expand_points(resource.targets, spec, status.points)}
        generation = resource.resource.metadata.get("generation")
        return planning.plan(
            self.owner(resource), spec, resource.targets, grid, generation, status, observed, now, settings
        )
