"""A sweep's quality section: what the API accepts, what a point reports (its termination message within
what Kubernetes keeps), the best point that must meet the floors, the sweep's passes (the section in
each point's config; a target speaking KServe v2 fails its points), and the canary decision on
quality (floor and regression against stable, with the figures that decided)."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.benchmark import BenchmarkRuntimeConfig, Slos
from modelfleet_api.benchmarksweep import PointMetrics, PointStatus
from modelfleet_api.constants import PointPhase
from modelfleet_api.quality import MAX_FLOORS, PointQuality, QualitySpec, floor_misses
from modelfleet_api.sweep_template import SweepTemplate
from modelfleet_operator.benchmark.policies.best import Verdict, best_per_slo, slo_verdict
from modelfleet_operator.serving.policies.canary import Decision, decide
from modelfleet_serve.bench.metrics import summarize
from modelfleet_serve.bench.quality import QualityScores
from modelfleet_serve.bench.results import TERMINATION_MESSAGE_LIMIT, point_metrics, termination_message
from pydantic import ValidationError

from tests.unit.test_benchmarksweep_reconcile import FakeKube, make, referenced_deployment, status
from tests.unit.test_benchmarksweep_results import LOAD, records

pytestmark = pytest.mark.unit

REFERENCES = {"uri": "az://evals/references.jsonl", "metrics": ["rougeL", "exactMatch"]}
LM_EVAL = {"tasks": ["arc_easy"], "limit": 50}
WORKLOAD = {"synthetic": {"inputTokens": {"mean": 8}, "outputTokens": {"mean": 8}}}
LOAD_PATTERN = {"concurrency": [1, 4], "requests": 10}


# ---- the API ----------------------------------------------------------------------------------------
def test_floors_must_name_scores_the_section_computes() -> None:
    spec = QualitySpec.model_validate(
        {
            "referenceSet": REFERENCES,
            "lmEval": LM_EVAL,
            "floors": {"rougeL": 0.3, "lm-eval/arc_easy/acc": 0.6},
        }
    )
    assert spec.computes("exactMatch") and spec.computes("lm-eval/arc_easy/acc_norm")
    assert not spec.computes("bleu"), "not among referenceSet.metrics"
    for floors, expected in (
        ({"bleu": 10.0}, "['bleu'] name no score this section computes"),
        ({"lm-eval/hellaswag/acc": 0.5}, "['lm-eval/hellaswag/acc'] name no score"),
        ({"rouge L": 0.3}, "each key is a metric name of at most 128 letters"),
        ({"rougeL": -0.1}, "greater than or equal to 0"),
    ):
        with pytest.raises(ValidationError, match=expected.replace("[", r"\[")):
            QualitySpec.model_validate({"referenceSet": REFERENCES, "lmEval": LM_EVAL, "floors": floors})
    with pytest.raises(ValidationError, match=f"at most {MAX_FLOORS} items"):
        QualitySpec.model_validate({"referenceSet": REFERENCES, "floors": {f"x{i}": 1.0 for i in range(9)}})
    with pytest.raises(ValidationError, match="quality needs something to score"):
        QualitySpec.model_validate({"floors": {}})


def test_quality_is_scored_over_an_openai_protocol_only() -> None:
    quality = {"referenceSet": REFERENCES}
    template = {"workload": WORKLOAD, "load": LOAD_PATTERN, "quality": quality}
    assert SweepTemplate.model_validate({**template, "protocol": "openai-completions"}).quality is not None
    with pytest.raises(
        ValidationError, match=r"quality is scored through the OpenAI API.*not kserve-v2-grpc"
    ):
        SweepTemplate.model_validate({**template, "protocol": "kserve-v2-grpc"})
    point = {"targetUrl": "http://t:8000", "model": "m", "workload": WORKLOAD, "quality": quality,
             "load": {"mode": "closed-loop", "concurrency": 1, "requests": 2}}  # fmt: skip
    assert BenchmarkRuntimeConfig.model_validate(point).quality is not None  # openai-chat by default
    with pytest.raises(ValidationError, match="not kserve-v2-http"):
        BenchmarkRuntimeConfig.model_validate({**point, "protocol": "kserve-v2-http"})


# ---- what a point reports ---------------------------------------------------------------------------
def test_floor_misses_name_the_score_and_the_floor() -> None:
    floors = {"rougeL": 0.3, "lm-eval/arc_easy/acc": 0.6}
    measured = PointQuality(scores={"rougeL": 0.21, "exactMatch": 0.1}, meets_floor=False)
    assert floor_misses(measured, floors) == ["rougeL 0.21 < 0.3", "lm-eval/arc_easy/acc not measured"]
    assert floor_misses(None, {"rougeL": 0.3}) == ["rougeL not measured"]
    assert floor_misses(PointQuality(scores={"rougeL": 0.3}, meets_floor=True), {"rougeL": 0.3}) == []
    # rounded to 0.3 in status, 0.29996 when the client checked it
    close = PointQuality(scores={"rougeL": 0.3}, meets_floor=False)
    assert floor_misses(close, {"rougeL": 0.3}) == [
        "meetsFloor false (the client's check on unrounded scores)"
    ]
    assert floor_misses(measured, {}) == []


def test_scores_are_rounded_for_status_and_the_floor_judged_unrounded() -> None:
    scored = QualityScores(
        {"rougeL": 0.299996, "bleu": 31.123456}, {"lm-eval/wiki/word_perplexity": 12.5}, 40
    )
    quality = scored.point_quality({"rougeL": 0.3})
    assert quality == PointQuality(scores={"rougeL": 0.3, "bleu": 31.1235}, meets_floor=False)
    assert scored.point_quality({}).meets_floor is None
    document = scored.document({"rougeL": 0.3})
    assert document["floor_misses"] == ["rougeL 0.299996 < 0.3"]
    assert document["lower_is_better"] == {"lm-eval/wiki/word_perplexity": 12.5}


def test_many_scores_give_way_to_the_floored_ones_in_the_termination_message() -> None:
    """A large lm-eval group's scores do not fit in 4096 bytes: the floored ones stay (with the number
    left out), the latency figures are whole."""
    summary = summarize(records(), Slos(), LOAD)
    scores = {f"lm-eval/mmlu_{i:02d}/acc_norm/custom-extract": 0.123456 for i in range(90)}
    floors = {f"lm-eval/mmlu_{i:02d}/acc_norm/custom-extract": 0.1 for i in range(3)}
    metrics = point_metrics(summary, quality=PointQuality(scores=scores, meets_floor=True))
    message = termination_message(metrics, floors)
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = PointMetrics.model_validate_json(message)
    assert parsed.quality == PointQuality(
        scores={n: 0.123456 for n in floors}, meets_floor=True, scores_left_out=87
    )
    assert parsed.output_tokens_per_second == metrics.output_tokens_per_second
    small = point_metrics(summary, quality=PointQuality(scores={"rougeL": 0.5}))
    assert PointMetrics.model_validate_json(termination_message(small, {})).quality == small.quality


def test_the_longest_floors_fit_beside_the_widest_figures() -> None:
    """Eight floors with the longest names and scores at their widest, the longest results URI and
    every sink failing: the floored scores and the figures fit (the sink errors give way to a note)."""
    from modelfleet_serve.bench.exports import sink_error

    summary = summarize(records(), Slos(ttft_p95_ms=1.0), LOAD)
    for key in ("ttft_ms", "tpot_ms", "e2e_ms", "schedule_lag_ms"):
        summary[key] |= {"p50": -123456789012.123456, "p95": -123456789012.123456, "p99": -1.23456789e300}
    for key in ("output_tokens_per_s", "requests_per_s", "goodput_requests_per_s", "error_rate"):
        summary[key] = -123456789012.123456
    summary["achieved_request_rate"], summary["late_requests"] = -123456789012.123456, 10_000_000
    names = [f"lm-eval/{i}{'x' * 118}/acc" for i in range(MAX_FLOORS)]
    quality = PointQuality(scores={n: -1.2345678901234567e300 for n in names}, meets_floor=False)
    uri = "https://acct.blob.core.windows.net/results/" + "%" * 1493
    errors = [sink_error("blob", ValueError('"\\' * 1000))] * 3
    metrics = point_metrics(summary, uri, errors, quality)
    parsed = PointMetrics.model_validate_json(message := termination_message(metrics, names))
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert parsed.quality == quality and parsed.results_uri == uri


# ---- the best point ---------------------------------------------------------------------------------
SLOS = Slos(ttft_p95_ms=500.0)


def point(index: int, tps: float, rouge: float | None, ttft: float = 200.0, **more: Any) -> PointStatus:
    quality = PointQuality(scores={"rougeL": rouge}) if rouge is not None else None
    return PointStatus(
        index=index, target="t", load=f"concurrency={2**index}", phase=PointPhase.SUCCEEDED,
        output_tokens_per_second=tps, ttft_p95_ms=ttft, quality=quality, **more,
    )  # fmt: skip


def test_the_best_point_meets_the_floor_as_well_as_the_slos() -> None:
    points = [point(0, 100.0, 0.42), point(1, 300.0, 0.21), point(2, 500.0, 0.45, ttft=900.0)]
    floors = {"rougeL": 0.3}
    assert [(b.slo, b.point) for b in best_per_slo(points, SLOS, floors)] == [("all", 0)]
    assert slo_verdict(points, SLOS, floors) == Verdict(
        status=True,
        reason=c.REASON_POINTS_MEET_SLOS,
        message="1 of 3 measured points meet every SLO and every quality floor; the best is point 0 "
        "(t concurrency=1) at 100 output tokens/s.",
    )
    # a floor alone, without SLOs, is an objective too
    assert [b.point for b in best_per_slo(points, Slos(), floors)] == [2]


def test_when_no_point_meets_the_floor_none_is_named_and_the_closest_score_is_said() -> None:
    points = [point(0, 100.0, 0.12), point(1, 300.0, 0.21), point(2, 500.0, None)]
    floors = {"rougeL": 0.3}
    assert best_per_slo(points, SLOS, floors) == []
    assert slo_verdict(points, SLOS, floors) == Verdict(
        status=False,
        reason=c.REASON_NO_POINT_MEETS_SLOS,
        message="None of the 3 measured points meets every SLO and every quality floor, so bestPerSlo "
        "names none (ttftP95Ms <= 500: lowest p95 200 ms at point 0 (concurrency=1), met by 3; "
        "rougeL >= 0.3: highest 0.21 at point 1 (concurrency=2), met by 0).",
    )
    assert slo_verdict([point(0, 1.0, None)], Slos(), floors) == Verdict(
        status=False,
        reason=c.REASON_NO_POINT_MEETS_SLOS,
        message="None of the 1 measured points meets every quality floor, so bestPerSlo names none "
        "(rougeL >= 0.3: not measured).",
    )


# ---- the sweep's passes -----------------------------------------------------------------------------
QUALITY = {"referenceSet": REFERENCES, "floors": {"rougeL": 0.3}}
TRITON = {
    "model": {"uri": "/m"},
    "engine": {"type": "triton-trtllm"},
    "resources": {"instanceType": "Standard_NC40adis_H100_v5"},
}


def test_each_point_config_carries_the_quality_section_and_status_its_scores() -> None:
    kube = FakeKube()
    referenced_deployment(kube, "chat", "Ready")
    kube.deployment_ready("chat")
    reconciler, _ = make(
        kube, [{"name": "a", "deploymentRef": "chat"}], quality=QUALITY, slos={"ttftP95Ms": 500}
    )
    reconciler.reconcile()
    config = BenchmarkRuntimeConfig.from_yaml(
        kube.objects[("ConfigMap", "ml", "sw-point-0-config")]["data"]["config.yaml"]
    )
    assert config.quality == QualitySpec.model_validate(QUALITY)
    low = PointMetrics(output_tokens_per_second=500.0, ttft_p95_ms=10.0,
                       quality=PointQuality(scores={"rougeL": 0.2}, meets_floor=False))  # fmt: skip
    kube.finish_job(
        "sw-point-0", message=low.model_dump_json(by_alias=True, exclude_none=True), succeeded=True
    )
    reconciler.reconcile()
    high = PointMetrics(output_tokens_per_second=100.0, ttft_p95_ms=10.0,
                        quality=PointQuality(scores={"rougeL": 0.35}, meets_floor=True))  # fmt: skip
    kube.finish_job(
        "sw-point-1", message=high.model_dump_json(by_alias=True, exclude_none=True), succeeded=True
    )
    reconciler.reconcile()
    found = status(kube)
    assert [p["quality"] for p in found["points"]] == [
        {"scores": {"rougeL": 0.2}, "meetsFloor": False},
        {"scores": {"rougeL": 0.35}, "meetsFloor": True},
    ]
    assert [b["point"] for b in found["bestPerSlo"]] == [1]
    assert found["bestThroughput"]["point"] == 0


def test_a_target_speaking_kserve_fails_its_points_without_a_job() -> None:
    kube = FakeKube()
    kube.add({"apiVersion": "modelfleet.io/v1alpha1", "kind": "ModelDeployment",
              "metadata": {"name": "trt", "namespace": "ml"}, "spec": TRITON})  # fmt: skip
    kube.deployment_ready("trt")
    reconciler, _ = make(kube, [{"name": "a", "deploymentRef": "trt"}], quality=QUALITY)
    reconciler.reconcile()
    reconciler.reconcile()
    points = status(kube)["points"]
    assert [p["reason"] for p in points] == [c.REASON_POINT_QUALITY_NEEDS_OPENAI] * 2
    assert points[0]["message"].startswith("quality: quality is scored through the OpenAI API")
    assert points[0]["message"].endswith("not kserve-v2-http (triton-trtllm speaks it)")
    assert kube.created("Job") == []


# ---- the canary decision ----------------------------------------------------------------------------
CANARY_QUALITY = QualitySpec.model_validate({"referenceSet": REFERENCES, "floors": {"rougeL": 0.3}})
STABLE = [point(0, 100.0, 0.40), point(3, 600.0, 0.40)]


def test_a_canary_under_the_quality_floor_is_rolled_back_naming_its_score() -> None:
    canary = [point(0, 100.0, 0.41), point(3, 600.0, 0.25)]
    assert decide(STABLE, canary, SLOS, 10.0, CANARY_QUALITY) == Decision(
        promote=False, message="at concurrency=8 the canary misses the quality floor: rougeL 0.25 < 0.3"
    )


def test_a_canary_whose_score_fell_more_than_the_margin_below_stables_is_rolled_back() -> None:
    quality = QualitySpec.model_validate({"referenceSet": REFERENCES})  # no floor: the margin alone
    canary = [point(0, 100.0, 0.40), point(3, 600.0, 0.34)]
    assert decide(STABLE, canary, SLOS, 10.0, quality) == Decision(
        promote=False,
        message="at concurrency=8 the canary is worse than stable: quality rougeL 0.34 is 85% of stable's "
        "0.4 (at least 90% allowed)",
    )


def test_a_canary_meeting_the_floor_is_promoted_with_its_scores_quoted() -> None:
    canary = [point(0, 98.0, 0.41), point(3, 590.0, 0.38)]
    assert decide(STABLE, canary, SLOS, 10.0, CANARY_QUALITY) == Decision(
        promote=True,
        message="the canary met every SLO and the quality floor (rougeL >= 0.3) at 2 load levels; within "
        "10% of stable at concurrency=1 (98% of stable's output tokens/s; quality rougeL 0.41 (stable 0.4)), "
        "concurrency=8 (98% of stable's output tokens/s; quality rougeL 0.38 (stable 0.4))",
    )
