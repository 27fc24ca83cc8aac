"""Operator metrics helpers and the JSON log format."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from modelfleet_operator import metrics
from modelfleet_operator.common.slots import PassSlots, Priority
from modelfleet_operator.logging_setup import configure_logging
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

pytestmark = pytest.mark.unit
ROUTINE = Priority.ROUTINE


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_measured_pass_counts_results_duration_and_empties_the_queue() -> None:
    seen: list[str] = []

    async def good() -> None:
        seen.append("a")
        assert sample("modelfleet_reconcile_queue_depth", kind="UnitKind", state="running") == 1

    async def bad() -> None:
        raise RuntimeError("API down")

    asyncio.run(metrics.measured_pass("UnitKind", PassSlots(1), ROUTINE, "ns", "a", good))
    with pytest.raises(RuntimeError):
        asyncio.run(metrics.measured_pass("UnitKind", PassSlots(1), ROUTINE, "ns", "b", bad))

    assert seen == ["a"]
    assert sample("modelfleet_reconcile_total", kind="UnitKind", result="success") == 1
    assert sample("modelfleet_reconcile_total", kind="UnitKind", result="error") == 1
    assert sample("modelfleet_reconcile_duration_seconds_count", kind="UnitKind") == 2
    for state in ("waiting", "running"):
        assert sample("modelfleet_reconcile_queue_depth", kind="UnitKind", state=state) == 0


def test_passes_wait_for_a_worker_slot_and_a_cancelled_wait_leaves_the_queue() -> None:
    async def scenario() -> None:
        workers = PassSlots(1)
        blocker = asyncio.Event()

        async def slow() -> None:
            await blocker.wait()

        first = asyncio.ensure_future(metrics.measured_pass("QueueKind", workers, ROUTINE, "ns", "a", slow))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(metrics.measured_pass("QueueKind", workers, ROUTINE, "ns", "b", slow))
        await asyncio.sleep(0.01)
        assert sample("modelfleet_reconcile_queue_depth", kind="QueueKind", state="waiting") == 1
        assert sample("modelfleet_reconcile_queue_depth", kind="QueueKind", state="running") == 1
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        blocker.set()
        await first

    asyncio.run(scenario())
    assert sample("modelfleet_reconcile_queue_depth", kind="QueueKind", state="waiting") == 0
    assert sample("modelfleet_reconcile_queue_depth", kind="QueueKind", state="running") == 0
    assert sample("modelfleet_reconcile_total", kind="QueueKind", result="success") == 1


def test_phase_index_counts_resources_by_kind_and_phase_and_forgets_deleted_ones() -> None:
    index = metrics.PhaseIndex()
    registry = CollectorRegistry()
    registry.register(index)
    index.observe("TrainingJob", "1", "Running", deleted=False)
    index.observe("TrainingJob", "2", None, deleted=False)
    index.observe("TrainingJob", "3", "Running", deleted=False)
    index.observe("TrainingJob", "3", "Succeeded", deleted=False)
    index.observe("ModelDeployment", "1", "Ready", deleted=False)
    index.observe("TrainingJob", "2", None, deleted=True)

    text = generate_latest(registry).decode()
    assert 'modelfleet_resources{kind="TrainingJob",phase="Running"} 1.0' in text
    assert 'modelfleet_resources{kind="TrainingJob",phase="Succeeded"} 1.0' in text
    assert 'modelfleet_resources{kind="ModelDeployment",phase="Ready"} 1.0' in text
    assert index.counts() == {
        ("TrainingJob", "Running"): 1,
        ("TrainingJob", "Succeeded"): 1,
        ("ModelDeployment", "Ready"): 1,
    }


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_carry_the_object_of_the_reconcile_pass(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json")
    log = logging.getLogger("modelfleet_operator.unit")

    async def reconcile() -> None:
        log.info("pass over %s", "llama")

    log.info("outside any pass")
    asyncio.run(metrics.measured_pass("TrainingJob", PassSlots(1), ROUTINE, "team-a", "llama", reconcile))
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]

    outside, inside = lines
    assert outside["message"] == "outside any pass" and "object" not in outside
    assert inside["message"] == "pass over llama"
    assert inside["object"] == {"kind": "TrainingJob", "namespace": "team-a", "name": "llama"}
    assert inside["severity"] == "info" and inside["logger"] == "modelfleet_operator.unit"
    assert inside["timestamp"]


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of json, text"):
        configure_logging("yaml")
