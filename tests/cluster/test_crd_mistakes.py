"""The realistic mistakes of ``manifest_cases`` are refused by the real API server naming the field,
its valid variety is accepted, and every CEL rule of the CRDs is exercised by some mistake.

All are server-side dry runs (what `kubectl apply --dry-run=server` sends: decoding with strict field
validation, the OpenAPI schema, defaulting and every CEL rule; nothing is stored; ``dry_run``), made
once per module, a few at a time, and shared by the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
import yaml
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from tests.cluster import test_crd_validation as earlier
from tests.cluster.conftest import CRD_FILES, REPO
from tests.cluster.dry_run import Verdict, assert_refused, dry_run_create
from tests.cluster.manifest_cases import (
    BENCHMARK_SWEEP_MISTAKES,
    MODEL_DEPLOYMENT_MISTAKES,
    TRAINING_JOB_MISTAKES,
    VALID,
    Case,
)

pytestmark = pytest.mark.cluster

MISTAKES: list[Case] = [
    *((f"tj-{i}", m, e) for i, m, e in TRAINING_JOB_MISTAKES),
    *((f"md-{i}", m, e) for i, m, e in MODEL_DEPLOYMENT_MISTAKES),
    *((f"bs-{i}", m, e) for i, m, e in BENCHMARK_SWEEP_MISTAKES),
]
EARLIER: list[Case] = [
    *((f"earlier-tj-{i}", m, e) for i, m, e in earlier.BAD_TRAINING_JOBS),
    *((f"earlier-md-{i}", m, e) for i, m, e in earlier.BAD_MODEL_DEPLOYMENTS),
    *((f"earlier-bs-{i}", m, e) for i, m, e in earlier.BAD_BENCHMARK_SWEEPS),
]
APPLIERS = 4
"""Requests at once (each is a round trip to the API server, which has two cores)."""


@pytest.fixture(scope="module")
def verdicts(crds: ControlPlane, api_client: client.ApiClient) -> Iterator[dict[str, Verdict]]:
    """id -> the API server's verdict on every manifest, valid ones included."""
    namespace = f"t-crd-mistakes-{uuid.uuid4().hex[:5]}"
    crds.kubectl("create", "namespace", namespace)
    manifests = {i: m for i, m, _ in [*MISTAKES, *EARLIER]} | {f"valid-{i}": m for i, m in VALID}
    try:
        with ThreadPoolExecutor(APPLIERS) as pool:
            judged = pool.map(partial(dry_run_create, api_client, namespace), manifests.values())
            yield dict(zip(manifests, judged, strict=True))
    finally:
        crds.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.mark.parametrize(
    ("case", "expected"), [(i, e) for i, _, e in MISTAKES], ids=[i for i, _, _ in MISTAKES]
)
def test_mistake_is_refused_naming_the_field(
    verdicts: dict[str, Verdict], case: str, expected: str | tuple[str, ...]
) -> None:
    assert_refused(verdicts[case], expected)


@pytest.mark.parametrize("case", [i for i, _ in VALID])
def test_valid_manifest_is_accepted(verdicts: dict[str, Verdict], case: str) -> None:
    accepted, message = verdicts[f"valid-{case}"]
    assert accepted, message


def test_the_sets_are_as_large_as_promised() -> None:
    """At least 100 mistakes across the three kinds beyond the earlier set, and 15 valid manifests."""
    assert len(MISTAKES) >= 100 and len(VALID) >= 15
    assert all(
        len(cases) >= 20
        for cases in (TRAINING_JOB_MISTAKES, MODEL_DEPLOYMENT_MISTAKES, BENCHMARK_SWEEP_MISTAKES)
    )
    assert len({i for i, _, _ in MISTAKES}) == len(MISTAKES)


TRANSITION_RULES_TESTED_ELSEWHERE = "oldSelf"
"""Rules comparing with the stored object run on updates only; ``test_crd_validation`` patches a held
TrainingJob to check them (``test_topology_is_frozen_while_running``)."""


def _cel_messages() -> dict[str, str]:
    """message -> rule of every CEL rule in the committed CRDs (transition rules left out)."""
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations", []):
                if TRANSITION_RULES_TESTED_ELSEWHERE not in rule["rule"]:
                    found[rule["message"]] = rule["rule"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in CRD_FILES:
        walk(yaml.safe_load((REPO / "crds" / name).read_text()))
    return found


def test_every_cel_rule_refuses_some_mistake(verdicts: dict[str, Verdict]) -> None:
    """A rule no mistake triggers is either dead or untested: each message must appear in a refusal."""
    outputs = [message for accepted, message in verdicts.values() if not accepted]
    unexercised = [message for message in _cel_messages() if not any(message in o for o in outputs)]
    assert not unexercised, "no mistake triggers these CEL rules:\n" + "\n".join(unexercised)
