"""The running operator's /metrics moves during a TrainingJob's life."""

from __future__ import annotations

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from hack.controlplane.cluster import wait_for
from tests.cluster.conftest import OperatorProcess, wait_for_phase
from tests.cluster.drive import finish_workers
from tests.cluster.test_trainingjob_lifecycle import create, training_job

pytestmark = pytest.mark.cluster


def samples(operator: OperatorProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(seen: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return seen.get((name, tuple(sorted(labels.items()))), 0.0)


def test_reconcile_counters_and_phases_move_with_a_training_job(
    operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    before = samples(operator)
    create(custom, namespace, training_job("metered"))
    wait_for_phase(custom, namespace, "metered", "Running")
    # The phase gauge follows the watch event of the status write, a moment after the API shows it.
    wait_for(
        lambda: value(samples(operator), "modelfleet_resources", kind="TrainingJob", phase="Running") >= 1,
        20,
        "the Running phase counted",
    )
    finish_workers(core, namespace, "metered", succeeded=True)
    wait_for_phase(custom, namespace, "metered", "Succeeded")
    wait_for(
        lambda: (
            value(samples(operator), "modelfleet_resources", kind="TrainingJob", phase="Succeeded")
            > value(before, "modelfleet_resources", kind="TrainingJob", phase="Succeeded")
        ),
        20,
        "the Succeeded phase counted",
    )

    after = samples(operator)
    passes = "modelfleet_reconcile_total"
    assert value(after, passes, kind="TrainingJob", result="success") > value(
        before, passes, kind="TrainingJob", result="success"
    )
    durations = "modelfleet_reconcile_duration_seconds_count"
    assert value(after, durations, kind="TrainingJob") > value(before, durations, kind="TrainingJob")
    assert ("modelfleet_reconcile_queue_depth", (("kind", "TrainingJob"), ("state", "waiting"))) in after
