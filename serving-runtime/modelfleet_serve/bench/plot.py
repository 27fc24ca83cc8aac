"""`modelfleet-bench plot`: the sweep plot (`modelfleet_api.sweepplot`, the same page the operator puts
in a sweep's results ConfigMap) from the `results.json` files of its points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelfleet_api.benchmark import LoadPoint, Slos
from modelfleet_api.sweepplot import PANELS, PlotPoint, render_html

SUMMARY_KEYS = {"ttft_p95_ms": "ttft_ms", "tpot_p95_ms": "tpot_ms", "e2e_p95_ms": "e2e_ms"}
"""Panel field -> the summary distribution its p95 comes from."""


def plot_point(document: dict[str, Any]) -> PlotPoint:
    summary = document["summary"]
    return PlotPoint(
        target=document["target"],
        load=document["load_label"],
        level=LoadPoint.model_validate(document["load"]).level,
        throughput=summary["output_tokens_per_s"],
        latency={metric: summary[SUMMARY_KEYS[metric]]["p95"] for metric, _ in PANELS},
        held_load=summary.get("held_load"),
    )


def plot_sweep(result_files: list[Path], output: Path, title: str = "Benchmark sweep") -> Path:
    """Write the plot of the points' results (their SLOs are those of the first) to `output` (HTML)."""
    if output.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--output: the plot is an HTML page (name it .html), got {output}")
    documents = [json.loads(path.read_text()) for path in result_files]
    slos = Slos.model_validate(documents[0].get("slos") or {}) if documents else Slos()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_html([plot_point(d) for d in documents], slos, title))
    return output
