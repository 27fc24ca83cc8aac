"""The sweep plot (``modelfleet_api.sweepplot``): series per target joined in load order, points
labelled with their load, SLO thresholds drawn, points that did not hold their load hollow."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest
from modelfleet_api.benchmark import Slos
from modelfleet_api.sweepplot import PlotPoint, render_html, short_label

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"


def point(target: str, level: float, throughput: float, ttft: float, held: bool | None = True) -> PlotPoint:
    load = f"rate={level:g}/s (poisson)"
    return PlotPoint(target, load, level, throughput, {"ttft_p95_ms": ttft, "tpot_p95_ms": None}, held)


def panels(page: str) -> list[ElementTree.Element]:
    return [ElementTree.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, re.S)]


def test_series_are_joined_in_load_order_and_labelled_with_their_load() -> None:
    # past saturation throughput falls while latency climbs: the curve bends back
    points = [
        point("vllm", 8, 700, 400),
        point("vllm", 2, 300, 50),
        point("vllm", 4, 800, 90),
        point("sglang", 2, 280, 60, held=False),
    ]
    page = render_html(points, Slos(ttft_p95_ms=200), "sweep")
    (ttft,) = panels(page)  # TPOT has no value anywhere: no panel
    (vllm_line,) = ttft.iter(f"{SVG}polyline")
    xs = [float(pair.split(",")[0]) for pair in vllm_line.attrib["points"].split()]
    assert xs[0] < xs[2] < xs[1]  # 2/s, 4/s, then back to 700 tok/s at 8/s
    labels = [t.text for t in ttft.iter(f"{SVG}text")]
    assert {"2/s", "4/s", "8/s"} <= set(labels) and "SLO 200 ms" in labels
    (slo,) = [line for line in ttft.iter(f"{SVG}line") if line.attrib.get("stroke-dasharray")]
    assert slo.attrib["y1"] == slo.attrib["y2"]
    hollow = [c for c in ttft.iter(f"{SVG}circle") if c.attrib["fill"] == "white"]
    assert len(hollow) == 1 and "did not hold its load" in hollow[0].find(f"{SVG}title").text
    assert "vllm" in page and "sglang" in page and "Hollow points" in page


def test_an_empty_sweep_still_renders_and_labels_are_short() -> None:
    assert "No point has latency figures yet" in render_html([], Slos(), "empty")
    assert short_label("concurrency=16") == "c=16"
    assert short_label("rate=2.5/s (constant)") == "2.5/s"
