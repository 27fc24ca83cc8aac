"""kopf_fixes.daemon_finalizer: the operator's daemons require no finalizer (kopf's own would put one
on every object), and a daemon ends on its own once the watch reports its object deleted, after its
pass in flight; an object deleted and created again under its name is another object."""

from __future__ import annotations

import asyncio
import logging

import kopf
import pytest
from modelfleet_operator.__main__ import build_registry
from modelfleet_operator.common.handlers import Wakeups
from modelfleet_operator.config import load_config
from modelfleet_operator.kopf_fixes.daemon_finalizer import without_finalizer
from modelfleet_operator.kube import Kube

pytestmark = pytest.mark.unit
KEY = ("TrainingJob", "ns", "tiny")


def test_no_daemon_of_the_operator_requires_kopfs_finalizer() -> None:
    registry = build_registry(load_config(["--all-namespaces", "--standalone"]), Kube())
    daemons = registry._spawning.get_all_handlers()
    assert {handler.id for handler in daemons} == {
        "trainingjobs-daemon",
        "modeldeployments-daemon",
        "benchmarksweeps-daemon",
    }
    assert not any(handler.requires_finalizer for handler in daemons)


def test_a_daemon_of_another_id_or_a_changed_registry_keeps_kopfs_finalizer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = kopf.OperatorRegistry()
    kopf.daemon("modelfleet.io", "v1alpha1", "trainingjobs", id="d", registry=registry)(lambda **_: None)
    with caplog.at_level(logging.WARNING):
        assert not without_finalizer(registry, "other")
        assert not without_finalizer(object(), "d")
    assert registry._spawning.get_all_handlers()[0].requires_finalizer
    assert len(caplog.records) == 2


def test_a_deleted_objects_daemon_is_woken_to_end_and_its_namesakes_state_is_its_own() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        old = wakeups.register(KEY, "uid-1")
        assert wakeups.register(KEY, "uid-1") is old, "the same object's daemon keeps its state"

        wakeups.deleted(KEY, "uid-2")  # another object of that name: not this one
        assert not old.gone and not old.wake.is_set()
        wakeups.deleted(KEY, "uid-1")
        assert old.gone and old.wake.is_set()

        new = wakeups.register(KEY, "uid-2")  # created again before the old daemon ended
        assert new is not old and not new.gone
        wakeups.drop(KEY, old)  # the old daemon's clean-up leaves the new one's state alone
        assert wakeups.get(KEY) is new
        wakeups.drop(KEY, new)
        assert wakeups.get(KEY) is None

    asyncio.run(scenario())
