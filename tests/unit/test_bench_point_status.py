"""What `modelfleet-bench run` writes into its termination message reaches the sweep's status as the
reconcile reads it today: a point that did not hold its load is marked there (heldLoad, schedule lag,
late requests), with its prefix-cache hit rate; the results ConfigMap carries the sweep's plot."""

from __future__ import annotations

import pytest
from modelfleet_api.benchmark import LoadPoint, Slos
from modelfleet_serve.bench.metrics import summarize
from modelfleet_serve.bench.records import RequestRecord
from modelfleet_serve.bench.results import point_metrics, termination_message

from tests.unit.test_benchmarksweep_reconcile import NS, TEMPLATE, FakeKube, make, status

pytestmark = pytest.mark.unit


def late_point_message() -> str:
    """The termination message of a point whose requests went out 50 ms late, one in three."""
    records = [
        RequestRecord(
            i,
            False,
            scheduled=i * 0.1,
            start=i * 0.1 + (0.05 if i % 3 == 0 else 0.0),
            chunk_times=[i * 0.1 + 0.2],
            end=i * 0.1 + 0.3,
            output_tokens=1,
            prompt_tokens=100,
            cached_tokens=25,
        )
        for i in range(30)
    ]
    load = LoadPoint(mode="open-loop", request_rate=10.0, requests=30)
    return termination_message(point_metrics(summarize(records, Slos(), load)))


def test_a_point_that_did_not_hold_its_load_is_marked_in_status() -> None:
    kube = FakeKube()
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE}])
    reconciler.reconcile()
    kube.deployment_ready("sw-a-0")
    reconciler.reconcile()
    kube.finish_job("sw-point-0", message=late_point_message(), succeeded=True)
    reconciler.reconcile()
    point = status(kube)["points"][0]
    assert point["phase"] == "Succeeded" and point["heldLoad"] is False
    assert point["lateRequests"] == 10 and point["scheduleLagP99Ms"] == pytest.approx(50.0)
    assert point["scheduleLagP50Ms"] == 0.0 and point["prefixCacheHitRate"] == 0.25
    plot = kube.objects[("ConfigMap", NS, "sw-results")]["data"]["sweep.html"]
    assert "Hollow points: the client did not hold that load" in plot
