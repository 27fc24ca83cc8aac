"""Expanding a sweep's spec into targets and points: pure, so the whole grid is unit-tested.

A template target with ``axes`` becomes one deployment per combination of the axis values (the cross
product, in the order engine, model, tensorParallelSize, quantization; an empty axis keeps the
template's value). A target's label names the values of the axes that vary (more than one value).
Every target is then measured at every token-lengths entry and every load level, in that order:
points ``0..n`` are numbered target by target, so a target's points are contiguous.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from modelfleet_api.benchmark import LoadPoint
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec, PointStatus, SweepTarget, TokenLengths
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import QUANTIZATION_SUPPORT, EngineType, Quantization

from modelfleet_operator.benchmark.names import ChildNames
from modelfleet_operator.common.errors import InvalidSpec

NO_QUANTIZATION = "none"


class InvalidSweep(InvalidSpec):
    """The spec passed the schema but cannot be expanded; the message names the field.

    The CRD refuses each of these on apply now; the checks stay as backstops for sweeps stored
    before their rules existed (each says which rule), which the API server keeps and the operator
    still expands on every pass: without them such a sweep would make ModelDeployments the API server
    refuses, and fail pass after pass instead of saying ``InvalidSpec``."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One deployment to measure."""

    name: str
    """Label in results: the target's name, with the axis values for expanded templates."""
    deployment: str
    """ModelDeployment name (existing for ``deploymentRef``, created by the sweep for templates)."""
    template: ModelDeploymentSpec | None
    """Spec of a deployment the sweep owns; None for a referenced one."""
    track: str | None = None
    """The referenced deployment's track measured through its own Service; None: its endpoint."""

    @property
    def owned(self) -> bool:
        return self.template is not None


@dataclass(frozen=True, kw_only=True)
class Point:
    """One (target, token lengths, load level) measurement: one benchmark Job."""

    index: int
    target: Target
    lengths: TokenLengths | None
    load: LoadPoint


def _combinations(position: int, target: SweepTarget) -> list[tuple[str, ModelDeploymentSpec]]:
    """(label, spec) of every deployment a template target expands into."""
    template = target.template
    assert template is not None
    axes = target.axes
    if axes is None:
        return [(target.name, template)]
    settings = template.engine.settings
    engines = axes.engine or [template.engine.type]
    models: list[str | None] = list(axes.model) or [template.model.uri]
    sizes = axes.tensor_parallel_size or [settings.tensor_parallel_size]
    quantizations = [str(q) for q in axes.quantization] or [str(settings.quantization or NO_QUANTIZATION)]
    varied = [
        name
        for name, values in (
            ("engine", axes.engine),
            ("model", axes.model),
            ("tp", axes.tensor_parallel_size),
            ("quantization", axes.quantization),
        )
        if len(values) > 1
    ]
    result = []
    for engine, model, size, quantization in itertools.product(engines, models, sizes, quantizations):
        chosen = None if quantization == NO_QUANTIZATION else Quantization(quantization)
        # Backstop: the CRD's axes.quantization rule (since commit 1b33f83) refuses this on apply.
        if chosen is not None and chosen not in QUANTIZATION_SUPPORT[engine]:
            raise InvalidSweep(
                f"spec.targets[{position}].axes.quantization: {chosen} is not supported by engine {engine}"
            )
        spec = template.model_copy(
            update={
                "model": template.model.model_copy(update={"uri": model}),
                "engine": template.engine.model_copy(
                    update={
                        "type": engine,
                        "settings": settings.model_copy(
                            update={"tensor_parallel_size": size, "quantization": chosen}
                        ),
                    }
                ),
            }
        )
        values = {"engine": str(engine), "model": model, "tp": str(size), "quantization": quantization}
        label = f"{target.name}({','.join(f'{name}={values[name]}' for name in varied)})"
        result.append((label if varied else target.name, spec))
    return result


def expand_targets(names: ChildNames, spec: BenchmarkSweepSpec) -> list[Target]:
    """Every deployment the sweep measures, in spec order (templates expanded in place)."""
    targets: list[Target] = []
    for position, target in enumerate(spec.targets):
        if target.deployment_ref is not None:
            track = target.track.value if target.track is not None else None
            targets.append(
                Target(name=target.name, deployment=target.deployment_ref, template=None, track=track)
            )
            continue
        for index, (label, template) in enumerate(_combinations(position, target)):
            targets.append(
                Target(name=label, deployment=names.deployment(target.name, index), template=template)
            )
    # Backstop: the CRD's workload.multiTurn rule (since commit 4603b9c) refuses this on apply.
    if spec.workload.multi_turn is not None and spec.protocol is None:
        triton = next(
            (t for t in targets if t.template and t.template.engine.type is EngineType.TRITON_TRTLLM), None
        )
        if triton is not None:
            raise InvalidSweep(
                f"spec.workload.multiTurn: target {triton.name} runs triton-trtllm, which speaks KServe v2; "
                "multi-turn conversations need the openai-chat protocol"
            )
    # Two deploymentRefs alike: refused by the CRD since commit 1b33f83 (a backstop for sweeps stored
    # before). A deploymentRef that is also the name an expanded template gets (<sweep>-<target>-<i>)
    # depends on the sweep's name, which the spec's rules do not see: checked here only.
    deployments = [t.deployment for t in targets]
    duplicate = next((d for d in deployments if deployments.count(d) > 1), None)
    if duplicate is not None:
        raise InvalidSweep(f"spec.targets: two targets measure the same deployment {duplicate}")
    return targets


def expand_points(
    targets: list[Target], spec: BenchmarkSweepSpec, stored: Sequence[PointStatus] = ()
) -> list[Point]:
    """Every point: targets outermost, then token lengths, then load levels.

    With ``load.search`` the points grow as the search goes (``policies.search``): before any is
    stored, the first level of every (target, lengths) series; afterwards the stored points, each
    rebuilt from its status (its target, lengths and level)."""
    lengths: list[TokenLengths | None] = list(spec.token_lengths) or [None]
    if spec.load.search is not None and stored:
        return [stored_point(status, targets, spec) for status in stored]
    loads = spec.load.points()
    combos = itertools.product(targets, lengths, loads)
    return [
        Point(index=index, target=target, lengths=length, load=load)
        for index, (target, length, load) in enumerate(combos)
    ]


def point_status(point: Point) -> PointStatus:
    """The status of a point not started yet: what it measures, in words and in numbers."""
    return PointStatus(
        index=point.index,
        target=point.target.name,
        deployment=point.target.deployment,
        track=point.target.track,
        load=point.load.label,
        concurrency=point.load.concurrency,
        request_rate=point.load.request_rate,
        input_tokens=point.lengths.input_tokens if point.lengths else None,
        output_tokens=point.lengths.output_tokens if point.lengths else None,
    )


def stored_point(status: PointStatus, targets: list[Target], spec: BenchmarkSweepSpec) -> Point:
    """The point a status describes (``point_status`` backwards)."""
    target = next((t for t in targets if t.deployment == status.deployment), None)
    level = status.concurrency if status.concurrency is not None else status.request_rate
    if target is None or level is None:
        raise InvalidSweep(
            f"status.points[{status.index}]: its target {status.deployment} or load level is no longer "
            "in the spec (a search's points come from the spec it started with)"
        )
    lengths = None
    if status.input_tokens is not None and status.output_tokens is not None:
        lengths = TokenLengths(input_tokens=status.input_tokens, output_tokens=status.output_tokens)
    return Point(index=status.index, target=target, lengths=lengths, load=spec.load.point_at(level))
