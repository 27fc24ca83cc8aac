"""kopf_fixes.light_handlers: index and watch-event handlers marked ``light`` are called without kopf's
per-call machinery, with the same results as kopf's own way (indexes, wakes, ignored errors), and
handlers not marked still get everything kopf passes. Events here go through kopf's processing:
``light_kinds``, which would take the kinds of light handlers past it, is kept out (its own tests)."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import kopf
import pytest
from kopf._cogs.structs import references
from kopf._core.actions import lifecycles
from kopf._core.engines import indexing
from kopf._core.reactor import inventory, processing
from modelfleet_api import constants as c
from modelfleet_operator import kopf_fixes
from modelfleet_operator.__main__ import apply_settings, build_registry
from modelfleet_operator.common import handlers as operator_handlers
from modelfleet_operator.common.kinds import CONFIG_MAP, POD
from modelfleet_operator.config import load_config
from modelfleet_operator.kopf_fixes import light_handlers, light_kinds
from modelfleet_operator.kube import Kube

pytestmark = pytest.mark.unit

PODS = references.Resource(group="", version="v1", plural="pods", kind="Pod", namespaced=True)
CONFIG_MAPS = references.Resource(
    group="", version="v1", plural="configmaps", kind="ConfigMap", namespaced=True
)
OWNER = ("TrainingJob", "team", "tiny")


@pytest.fixture(autouse=True)
def fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kopf_fixes.install()
    assert kopf_fixes.install(), "a second install is a no-op"
    monkeypatch.setattr(light_kinds, "light_kind", lambda registry, resource: None)


def child(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "team",
            "uid": f"uid-{name}",
            "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_TRAINING_JOB: "tiny"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": c.MANAGED_BY, "operation": "Apply", "fieldsV1": {"f:data": {}}}],
        },
        **extra,
    }


EVENTS: list[tuple[references.Resource, str, dict[str, Any]]] = [
    (CONFIG_MAPS, "ADDED", child("ConfigMap", "tiny-config", data={"a": "1"})),
    (PODS, "ADDED", child("Pod", "tiny-0", spec={"nodeName": "n1"}, status={"phase": "Pending"})),
    (PODS, "MODIFIED", child("Pod", "tiny-0", spec={"nodeName": "n1"}, status={"phase": "Running"})),
    (PODS, "ADDED", child("Pod", "tiny-1", spec={}, status={"phase": "Pending"})),
    (PODS, "MODIFIED", child("Pod", "tiny-1", spec={}, status={"phase": "Failed"})),
    (PODS, "DELETED", child("Pod", "tiny-1", spec={}, status={"phase": "Failed"})),
]


class Operator:
    """kopf's processing of watch events with a registry, as kopf's reactor calls it."""

    def __init__(self, registry: kopf.OperatorRegistry, settings: kopf.OperatorSettings) -> None:
        self.registry, self.settings = registry, settings
        self.indexers = indexing.OperatorIndexers()
        self.indexers.ensure(registry._indexing.get_all_handlers())
        self.memories = inventory.ResourceMemories()

    async def process(self, resource: references.Resource, type_: str, body: dict[str, Any]) -> None:
        await processing.process_resource_event(
            lifecycle=lifecycles.get_default_lifecycle(),
            indexers=self.indexers,
            registry=self.registry,
            settings=self.settings,
            memories=self.memories,
            memobase=kopf.Memo(),
            resource=resource,
            raw_event={"type": type_, "object": copy.deepcopy(body)},  # type: ignore[typeddict-item]
            event_queue=asyncio.Queue(),
            no_throttling=True,
        )

    def index(self, index_id: str) -> dict[Any, list[Any]]:
        return {key: list(values) for key, values in self.indexers.indices[index_id].items()}


def operator_run(events: list[tuple[references.Resource, str, dict[str, Any]]]) -> tuple[Any, list[Any]]:
    """The operator's own registry through ``events``: its pod and ConfigMap indexes, and the wakes of
    the owner (whether urgent), one per wake."""
    config = load_config(["--all-namespaces", "--standalone"])
    wakeups: list[bool] = []
    real = operator_handlers.Wakeups.wake

    def recording(self: operator_handlers.Wakeups, key: Any, *, urgent: bool = False) -> None:
        if key == OWNER:
            wakeups.append(urgent)
        real(self, key, urgent=urgent)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(operator_handlers.Wakeups, "wake", recording)
        registry = build_registry(config, Kube())
        operator = Operator(registry, settings(config))

        async def scenario() -> None:
            for resource, type_, body in events:
                await operator.process(resource, type_, body)

        asyncio.run(scenario())
    return (operator.index(POD.index_id), operator.index(CONFIG_MAP.index_id)), wakeups


def settings(config: Any) -> kopf.OperatorSettings:
    found = kopf.OperatorSettings()
    apply_settings(found, config)
    return found


def test_the_operators_indexes_and_wakes_are_the_same_the_short_way_as_kopfs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = operator_run(EVENTS)
    monkeypatch.setattr(light_handlers, "is_light", lambda handlers, cause: False)
    long = operator_run(EVENTS)

    assert short == long
    (pods, config_maps), wakes = short
    key = (c.LABEL_TRAINING_JOB, "team", "tiny")
    assert [live.name for live in pods[key]] == ["tiny-0"]  # tiny-1 deleted
    assert pods[key][0].manifest["status"] == {"phase": "Running"}
    assert [live.name for live in config_maps[key]] == ["tiny-config"]
    # every event woke the owner; the pod that failed and the one deleted at once
    assert wakes == [False, False, False, False, True, True]


def test_light_handlers_get_the_few_keywords_and_others_everything_kopf_passes() -> None:
    registry = kopf.OperatorRegistry()
    seen: dict[str, dict[str, Any]] = {}

    async def light_index(**kwargs: Any) -> Any:
        seen["light index"] = kwargs
        return kwargs["name"]

    async def light_event(**kwargs: Any) -> None:
        seen["light event"] = kwargs

    async def heavy_event(**kwargs: Any) -> None:
        seen["heavy event"] = kwargs

    light = light_handlers.light
    kopf.index("", "v1", "configmaps", id="light_index", registry=registry)(light(light_index))
    kopf.on.event("", "v1", "configmaps", id="light-event", registry=registry)(light(light_event))
    kopf.on.event("", "v1", "pods", id="heavy-event", registry=registry)(heavy_event)
    operator = Operator(registry, kopf.OperatorSettings())

    async def scenario() -> None:
        await operator.process(CONFIG_MAPS, "ADDED", child("ConfigMap", "tiny-config"))
        await operator.process(PODS, "ADDED", child("Pod", "tiny-0"))

    asyncio.run(scenario())

    assert set(seen["light index"]) == {"body", "name", "namespace", "uid", "labels"}
    assert set(seen["light event"]) == {"body", "name", "namespace", "uid", "labels", "type"}
    assert seen["light event"]["type"] == "ADDED" and seen["light event"]["uid"] == "uid-tiny-config"
    assert seen["light event"]["labels"][c.LABEL_TRAINING_JOB] == "tiny"
    assert operator.index("light_index") == {None: ["tiny-config"]}
    # a handler not marked goes kopf's way: its keywords, indexes included
    assert {"retry", "started", "runtime", "patch", "logger", "light_index", "spec", "meta"} <= set(
        seen["heavy event"]
    )


def failing_handlers(caplog: pytest.LogCaptureFixture) -> tuple[list[Any], list[str], list[str]]:
    """A ConfigMap's index handler that fails on its second event and a watch-event handler that always
    fails: (the index after each event, the names the watch-event handler saw, the error messages)."""
    registry = kopf.OperatorRegistry()
    fail = {"now": False}
    woken: list[str] = []

    async def index(name: str, **_: Any) -> Any:
        if fail["now"]:
            raise RuntimeError("broken index")
        return name

    async def event(name: str, **_: Any) -> None:
        woken.append(name)
        raise RuntimeError("broken handler")

    kopf.index("", "v1", "configmaps", id="names", registry=registry)(light_handlers.light(index))
    kopf.on.event("", "v1", "configmaps", id="wake", registry=registry)(light_handlers.light(event))
    operator = Operator(registry, kopf.OperatorSettings())

    async def scenario() -> list[Any]:
        found = []
        await operator.process(CONFIG_MAPS, "ADDED", child("ConfigMap", "a"))
        found.append(operator.index("names"))
        fail["now"] = True
        await operator.process(CONFIG_MAPS, "MODIFIED", child("ConfigMap", "a"))
        found.append(operator.index("names"))
        return found

    with caplog.at_level(logging.ERROR):
        found = asyncio.run(scenario())
    return found, woken, [record.getMessage() for record in caplog.records]


def test_a_failing_light_handler_is_logged_and_ignored_and_leaves_the_object_out_of_its_index(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found, woken, messages = failing_handlers(caplog)

    assert found == [{None: ["a"]}, {}]
    assert woken == ["a", "a"]
    assert "Handler 'wake' failed with an exception. Will ignore." in messages
    assert "Handler 'names' failed with an exception. Will ignore." in messages


def test_kopf_changed_shape_leaves_kopf_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from kopf._core.actions import execution

    async def other(handlers: Any, cause: Any) -> dict[Any, Any]:
        return {}

    monkeypatch.setattr(execution, "execute_handlers_once", other)
    assert not light_handlers.install()
    assert execution.execute_handlers_once is other
