"""Operator metrics helpers and the JSON log format."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import kubernetes
import pytest
from modelfleet_operator import kube, metrics
from modelfleet_operator.logging_setup import configure_logging
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

pytestmark = pytest.mark.unit


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_reconcile_in_thread_counts_results_duration_and_empties_the_queue() -> None:
    seen: list[tuple[str, str]] = []

    def good(namespace: str, name: str) -> None:
        seen.append((namespace, name))
        assert sample("modelfleet_reconcile_queue_depth", kind="UnitKind", state="running") == 1

    def bad(namespace: str, name: str) -> None:
        raise RuntimeError("API down")

    asyncio.run(metrics.reconcile_in_thread("UnitKind", good, "ns", "a"))
    with pytest.raises(RuntimeError):
        asyncio.run(metrics.reconcile_in_thread("UnitKind", bad, "ns", "b"))

    assert seen == [("ns", "a")]
    assert sample("modelfleet_reconcile_total", kind="UnitKind", result="success") == 1
    assert sample("modelfleet_reconcile_total", kind="UnitKind", result="error") == 1
    assert sample("modelfleet_reconcile_duration_seconds_count", kind="UnitKind") == 2
    for state in ("waiting", "running"):
        assert sample("modelfleet_reconcile_queue_depth", kind="UnitKind", state=state) == 0


def test_a_pass_cancelled_while_waiting_for_a_thread_leaves_the_queue() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            loop.set_default_executor(pool)
            blocker = asyncio.Event()

            def slow(namespace: str, name: str) -> None:
                asyncio.run_coroutine_threadsafe(blocker.wait(), loop).result()

            first = asyncio.ensure_future(metrics.reconcile_in_thread("QueueKind", slow, "ns", "a"))
            await asyncio.sleep(0.05)
            second = asyncio.ensure_future(metrics.reconcile_in_thread("QueueKind", slow, "ns", "b"))
            await asyncio.sleep(0.05)
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
    record = index.handler("TrainingJob")
    record(type=None, uid="1", status={"phase": "Running"})
    record(type="ADDED", uid="2", status={})
    record(type="MODIFIED", uid="3", status={"phase": "Running"})
    record(type="MODIFIED", uid="3", status={"phase": "Succeeded"})
    index.handler("ModelDeployment")(type="ADDED", uid="1", status={"phase": "Ready"})
    record(type="DELETED", uid="2", status={})

    text = generate_latest(registry).decode()
    assert 'modelfleet_resources{kind="TrainingJob",phase="Running"} 1.0' in text
    assert 'modelfleet_resources{kind="TrainingJob",phase="Succeeded"} 1.0' in text
    assert 'modelfleet_resources{kind="ModelDeployment",phase="Ready"} 1.0' in text
    assert index.counts() == {
        ("TrainingJob", "Running"): 1,
        ("TrainingJob", "Succeeded"): 1,
        ("ModelDeployment", "Ready"): 1,
    }


def test_kube_counts_failed_calls_by_verb_and_status_not_answers_it_handles() -> None:
    calls = iter([kubernetes.client.ApiException(status=503), ConnectionRefusedError(), "ok"])

    @kube._counts_errors("unitverb")
    def call() -> str:
        outcome = next(calls)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    with pytest.raises(kubernetes.client.ApiException):
        call()
    with pytest.raises(ConnectionRefusedError):
        call()
    assert call() == "ok"
    assert sample("modelfleet_api_errors_total", verb="unitverb", code="503") == 1
    assert sample("modelfleet_api_errors_total", verb="unitverb", code="connection") == 1


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

    def reconcile(namespace: str, name: str) -> None:
        log.info("pass over %s", name)

    log.info("outside any pass")
    asyncio.run(metrics.reconcile_in_thread("TrainingJob", reconcile, "team-a", "llama"))
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
