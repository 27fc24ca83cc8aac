"""The BenchmarkSweep CRD refuses workload, load and search mistakes at ``kubectl apply``, naming the
field (the CEL rules of the benchmark client's API: multi-turn, shared prefix, trace replay, search),
and stores the new sections when they are right. Server-side dry runs (``dry_run``), like
test_crd_validation."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.cluster.dry_run import assert_refused, dry_run_create
from tests.cluster.test_crd_validation import DELETE, dry_run_namespace, edit
from tests.unit.test_api_models import good_benchmark_sweep

__all__ = ["dry_run_namespace"]  # the fixture, shared with test_crd_validation
pytestmark = pytest.mark.cluster

BS = edit(good_benchmark_sweep("bench-rules"), spec__tokenLengths=DELETE)
SYNTHETIC = BS["spec"]["workload"]["synthetic"]
SHARED_PREFIX = {
    "prefixes": 4,
    "suffixesPerPrefix": 8,
    "prefixTokens": 256,
    "suffixTokens": {"mean": 16},
    "outputTokens": {"mean": 8},
}
SEARCH = {"mode": "open-loop", "requests": 100, "search": {"min": 1, "max": 256}}

BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "two-sources",
        edit(BS, spec__workload={"synthetic": SYNTHETIC, "sharedPrefix": SHARED_PREFIX}),
        "spec.workload: Required value: set exactly one of promptsFile, synthetic, sharedPrefix and trace",
    ),
    (
        "multi-turn-over-a-trace",
        edit(BS, spec__workload={"trace": {"uri": "/t.jsonl"}, "multiTurn": {"turns": 2}}),
        "spec.workload.multiTurn: Forbidden: multiTurn makes conversations of promptsFile or synthetic",
    ),
    (
        "multi-turn-over-completions",
        edit(
            BS, spec__workload={"synthetic": SYNTHETIC, "multiTurn": {}}, spec__protocol="openai-completions"
        ),
        "spec.workload.multiTurn: Invalid value: multi-turn conversations are sent as chat messages",
    ),
    (
        "think-time-bounds",
        edit(
            BS,
            spec__workload={
                "synthetic": SYNTHETIC,
                "multiTurn": {"thinkTime": {"minSeconds": 3, "maxSeconds": 1}},
            },
        ),
        "spec.workload.multiTurn.thinkTime.minSeconds: Invalid value: minSeconds must be <= maxSeconds",
    ),
    (
        "trace-arrivals-without-a-trace",
        edit(BS, spec__load={"mode": "open-loop", "requestRates": [1.0], "arrival": "trace", "requests": 5}),
        "spec.load.arrival: Invalid value: arrival trace sends requests at a trace's recorded offsets",
    ),
    (
        "search-without-slos",
        edit(BS, spec__load=SEARCH, spec__slos=DELETE),
        "spec.load.search: Required value: search finds the highest load meeting the SLOs",
    ),
    (
        "search-and-levels",
        edit(BS, spec__load={**SEARCH, "requestRates": [1.0]}),
        "spec.load.search: Forbidden: search chooses the load levels itself",
    ),
    (
        "closed-loop-search-fractional",
        edit(BS, spec__load={**SEARCH, "mode": "closed-loop", "search": {"min": 1.5, "max": 8}}),
        "spec.load.search: Invalid value: a closed-loop search is over concurrency",
    ),
    (
        "search-min-above-max",
        edit(BS, spec__load={**SEARCH, "search": {"min": 9, "max": 2}}),
        "spec.load.search.min: Invalid value: min must be <= max",
    ),
]


@pytest.mark.parametrize(("manifest", "expected"), [(m, e) for _, m, e in BAD], ids=[i for i, _, _ in BAD])
def test_bad_benchmark_workload_or_search_rejected(
    api_client: client.ApiClient, dry_run_namespace: str, manifest: dict[str, Any], expected: str
) -> None:
    assert_refused(dry_run_create(api_client, dry_run_namespace, manifest), expected)


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("shared-prefix", edit(BS, spec__workload={"sharedPrefix": SHARED_PREFIX})),
    (
        "sharegpt-conversations",
        edit(
            BS,
            spec__workload={
                "promptsFile": {"uri": "az://data/sharegpt.json"},
                "multiTurn": {"turns": 3, "thinkTime": {"meanSeconds": 2}},
            },
        ),
    ),
    (
        "trace-replay",
        edit(
            BS,
            spec__workload={"trace": {"uri": "/t.jsonl"}},
            spec__load={"mode": "open-loop", "requestRates": [2.0], "arrival": "trace", "requests": 5},
        ),
    ),
    ("rate-search", edit(BS, spec__load=SEARCH)),
    (
        "concurrency-search",
        edit(BS, spec__load={**SEARCH, "mode": "closed-loop", "search": {"min": 1, "max": 64}}),
    ),
]


@pytest.mark.parametrize("manifest", [m for _, m in GOOD], ids=[i for i, _ in GOOD])
def test_good_benchmark_workloads_and_searches_accepted(
    api_client: client.ApiClient, dry_run_namespace: str, manifest: dict[str, Any]
) -> None:
    accepted, message = dry_run_create(api_client, dry_run_namespace, manifest)
    assert accepted, message
