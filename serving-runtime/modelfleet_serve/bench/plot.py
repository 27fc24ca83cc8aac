"""The sweep plot: latency against throughput, one line per target, one point per load point."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PANELS = (
    ("ttft_ms", "TTFT p50 / p95 (ms)"),
    ("tpot_ms", "TPOT p50 / p95 (ms)"),
    ("e2e_ms", "E2E p50 / p95 (ms)"),
)


def plot_sweep(result_files: list[Path], output: Path) -> Path:
    by_target: dict[str, list[dict]] = defaultdict(list)
    for path in result_files:
        document = json.loads(path.read_text())
        by_target[document["target"]].append(document["summary"])
    figure, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4), constrained_layout=True)
    for target, summaries in sorted(by_target.items()):
        summaries.sort(key=lambda s: s["output_tokens_per_s"])
        throughput = [s["output_tokens_per_s"] for s in summaries]
        for axis, (metric, title) in zip(axes, PANELS, strict=True):
            (line,) = axis.plot(
                throughput, [s[metric]["p50"] for s in summaries], marker="o", label=f"{target} p50"
            )
            axis.plot(
                throughput,
                [s[metric]["p95"] for s in summaries],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{target} p95",
            )
            axis.set(title=title, xlabel="output tokens/s")
    axes[0].legend(fontsize="small")
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output
