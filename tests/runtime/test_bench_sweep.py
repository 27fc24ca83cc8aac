"""`modelfleet-bench sweep` against the fake OpenAI server: a search for the highest concurrency that
meets the SLOs, and a listed pattern drawn as the sweep plot.

The server stands in for an engine with an admission limit (`--max-concurrent 5`: more requests at
once are refused with 429), so the answer is exact: every level up to 5 meets the (generous) SLOs and
keeps its load (nothing counts as late), any higher one has errors. That a higher level has errors
needs more than 5 of its requests in flight at once: each completion holds its slot for HOLD_MS before
its first token, so the workers of a level overlap even when a loaded machine delays the client's
sends by tens of milliseconds. With 5 ms, at load 8-19 on two cores, level 8 once never had 6 in
flight, was not refused, and the search answered 8."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_serve.bench.fake_server import running

pytestmark = pytest.mark.runtime

HOLD_MS = 100.0

PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"


def sweep(tmp_path: Path, url: str, load: dict[str, Any]) -> Path:
    config = {
        "targetUrl": url,
        "targetName": "fake",
        "model": "fake",
        "protocol": "openai-completions",
        "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": 4}}},
        "slos": {"ttftP95Ms": 10000},
        "load": load,
        "outputDir": str(tmp_path / "sweep"),
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "modelfleet_serve.bench.cli", "sweep", "--config", str(path)]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-4000:]
    return tmp_path / "sweep"


def test_search_finds_the_highest_concurrency_meeting_the_slos(tmp_path: Path) -> None:
    with running(HOLD_MS, 1.0, "--max-concurrent", "5") as url:
        # a stall of this shared machine must not decide the answer: no request counts as late
        load = {
            "mode": "closed-loop",
            "requests": 40,
            "lateThresholdMs": 60000,
            "search": {"min": 1, "max": 32},
        }
        output = sweep(tmp_path, url, load)
    frontier = json.loads((output / "frontier.json").read_text())
    # 1, 2, 4, 8 (refused), then 6 (refused), 5
    assert frontier == {
        "max_load": 5.0,
        "point": 5,
        "load": "concurrency=5",
        "output_tokens_per_s": frontier["output_tokens_per_s"],
        "goodput_requests_per_s": frontier["goodput_requests_per_s"],
        "first_failing_load": 6.0,
        "limited_by": ["errorRate"],
        "points": 6,
    }
    levels = [
        json.loads((output / f"point-{i}" / "results.json").read_text())["load"]["concurrency"]
        for i in range(6)
    ]
    assert levels == [1, 2, 4, 8, 6, 5]
    page = (output / "sweep.html").read_text()
    assert all(f">c={c}<" in page for c in levels) and "SLO 10,000 ms" in page


def test_a_listed_pattern_measures_every_level_and_draws_them(tmp_path: Path) -> None:
    with running(2.0, 1.0) as url:
        load = {"mode": "open-loop", "requestRates": [5, 10], "arrival": "constant", "requests": 10}
        output = sweep(tmp_path, url, load)
    assert not (output / "frontier.json").exists()
    for index, rate in enumerate([5, 10]):
        document = json.loads((output / f"point-{index}" / "results.json").read_text())
        assert document["load"]["requestRate"] == rate and document["summary"]["completed"] == 10
        assert (output / f"point-{index}" / "trace.jsonl").exists()
    page = (output / "sweep.html").read_text()
    assert ">5/s<" in page and ">10/s<" in page
