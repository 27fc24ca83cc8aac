"""`modelfleet-bench sweep`: a sweep of one target from this machine, without a cluster: the load
levels of a `LoadPattern`, or its `search` for the highest load that meets the SLOs (the same search a
BenchmarkSweep runs, `modelfleet_api.loadsearch`).

The config is a point's (`BenchmarkRuntimeConfig`) with `load` holding a pattern (`concurrency` or
`requestRates` lists, or `search`). Point N's files go to `<outputDir>/point-N/`, the plot to
`<outputDir>/sweep.html`, and a search's result to `<outputDir>/frontier.json`. With `quality`, the
target is scored once, after the last point (its answers do not depend on the load), into
`<outputDir>/quality.json`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from modelfleet_api import loadsearch
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, LoadMode, LoadPattern, LoadPoint, Protocol, Slos
from modelfleet_api.sweepplot import render_html

from modelfleet_serve.bench.plot import plot_point
from modelfleet_serve.bench.point import measure
from modelfleet_serve.bench.quality import score_quality
from modelfleet_serve.bench.results import point_metrics, write_results

log = logging.getLogger("modelfleet_bench")
PLOT_HTML = "sweep.html"
FRONTIER_JSON = "frontier.json"
QUALITY_JSON = "quality.json"


@dataclass
class LocalSweep:
    """A sweep's config: everything of a point but the load, and the pattern."""

    base: dict[str, Any]
    pattern: LoadPattern
    output: Path
    slos: Slos

    @classmethod
    def from_file(cls, path: Path) -> LocalSweep:
        wire = yaml.safe_load(path.read_text())
        if not isinstance(wire, dict) or "load" not in wire:
            raise ValueError(f"{path}: a sweep config is a point's config whose load is a pattern")
        pattern = LoadPattern.model_validate(wire.pop("load"))
        first = BenchmarkRuntimeConfig.model_validate({**wire, "load": pattern.points()[0].to_wire()})
        if pattern.search is not None and not any(getattr(first.slos, n) for n in Slos.model_fields):
            raise ValueError(
                "load.search: search finds the highest load meeting the SLOs: set at least one of slos"
            )
        return cls(wire, pattern, Path(first.output_dir), first.slos)

    def config(self, point: LoadPoint, index: int) -> BenchmarkRuntimeConfig:
        directory = self.output / f"point-{index}"
        return BenchmarkRuntimeConfig.model_validate(
            {**self.base, "load": point.to_wire(), "outputDir": str(directory)}
        )


@dataclass
class SweepResult:
    documents: list[dict[str, Any]] = field(default_factory=list)
    frontier: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    plot: Path | None = None


def run_sweep(sweep: LocalSweep) -> SweepResult:
    """Measure every level (or search), writing each point's files, then the plot (and frontier)."""
    result = SweepResult()
    search = sweep.pattern.search
    closed = sweep.pattern.mode is LoadMode.CLOSED_LOOP
    probes: list[loadsearch.Probe] = []
    listed = sweep.pattern.points() if search is None else []
    while True:
        if search is None:
            if len(result.documents) == len(listed):
                break
            point = listed[len(result.documents)]
        else:
            step = loadsearch.next_step(search, closed, probes)
            if step.done or step.next_level is None:
                break
            point = sweep.pattern.point_at(step.next_level)
        config = sweep.config(point, len(result.documents))
        measured = measure(config)
        chat = config.protocol is Protocol.OPENAI_CHAT
        write_results(Path(config.output_dir), measured.document, measured.records, measured.sessions, chat)
        result.documents.append(measured.document)
        summary = measured.document["summary"]
        metrics = point_metrics(summary)
        why = loadsearch.failures(metrics, sweep.slos, search) if search is not None else []
        probes.append(loadsearch.Probe(point.level, tuple(why)))
        log.info(
            "point %d %s: %.1f output tok/s, TTFT p95 %s ms, held load %s%s",
            len(result.documents) - 1,
            point.label,
            summary["output_tokens_per_s"],
            metrics.ttft_p95_ms,
            summary["held_load"],
            f", fails: {', '.join(why)}" if why else "",
        )
    if search is not None:
        result.frontier = frontier(search, probes, result.documents)
        (sweep.output / FRONTIER_JSON).write_text(json.dumps(result.frontier, indent=2) + "\n")
    target = sweep.config(sweep.pattern.points()[0], 0)
    if target.quality is not None:
        result.quality = score_quality(target, target.quality).document(target.quality.floors)
        (sweep.output / QUALITY_JSON).write_text(json.dumps(result.quality, indent=2) + "\n")
    result.plot = sweep.output / PLOT_HTML
    points = [plot_point(d) for d in result.documents]
    result.plot.write_text(
        render_html(points, sweep.slos, f"Sweep of {sweep.base.get('targetName', 'target')}")
    )
    return result


def frontier(search: Any, probes: list[loadsearch.Probe], documents: list[dict[str, Any]]) -> dict[str, Any]:
    found = loadsearch.bracket(probes)
    best = found.highest_meeting
    index = next((i for i, p in enumerate(probes) if p is best), None)
    summary = documents[index]["summary"] if index is not None else None
    return {
        "max_load": best.level if best else None,
        "point": index,
        "load": documents[index]["load_label"] if index is not None else None,
        "output_tokens_per_s": summary["output_tokens_per_s"] if summary else None,
        "goodput_requests_per_s": summary["goodput_requests_per_s"] if summary else None,
        "first_failing_load": found.lowest_failing.level if found.lowest_failing else None,
        "limited_by": loadsearch.limited_by(search, probes),
        "points": len(probes),
    }
