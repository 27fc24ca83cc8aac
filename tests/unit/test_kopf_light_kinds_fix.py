"""kopf_fixes.light_kinds: the watch events of a kind whose every handler is light and simply filtered
skip kopf's per-object processing, with the same indexes and wakes as kopf's own way; every other kind
still goes through kopf; a failing handler is logged and ignored; no handler runs before kopf's indexes
are all filled."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.structs import references
from kopf._core.reactor import processing
from modelfleet_api import constants as c
from modelfleet_operator import kopf_fixes
from modelfleet_operator.__main__ import build_registry
from modelfleet_operator.common.kinds import (
    CONFIG_MAP,
    JOB,
    MODEL_DEPLOYMENT,
    POD,
    SECRET,
    SERVICE_ACCOUNT,
    TRAINING_JOB,
    Kind,
)
from modelfleet_operator.config import load_config
from modelfleet_operator.kopf_fixes import light_handlers, light_kinds
from modelfleet_operator.kube import Kube

from tests.unit.test_kopf_light_handlers_fix import (
    CONFIG_MAPS,
    EVENTS,
    PODS,
    Operator,
    child,
    failing_handlers,
    operator_run,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def fixed() -> None:
    assert kopf_fixes.install()
    assert kopf_fixes.install(), "a second install is a no-op"


def resource(kind: Kind) -> references.Resource:
    return references.Resource(
        group=kind.group, version=kind.version, plural=kind.plural, kind=kind.kind, namespaced=True
    )


def unmanaged(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the managed-by label: the operator's index and wake filters no longer match."""
    labels = {k: v for k, v in body["metadata"]["labels"].items() if k != c.LABEL_MANAGED_BY}
    return {**body, "metadata": {**body["metadata"], "labels": labels}}


def test_the_operators_indexes_and_wakes_are_the_same_as_through_kopf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = child("Pod", "tiny-2", spec={"nodeName": "n2"}, status={"phase": "Running"})
    events = [
        (PODS, None, listed),  # noticed by the initial listing: kopf's event type is None
        *EVENTS,
        (PODS, "MODIFIED", unmanaged(listed)),  # stops matching: leaves the index, wakes no one
        (PODS, "MODIFIED", listed),  # matches again
    ]
    calls: list[str] = []
    short_way = light_kinds.process_light_event

    async def counted(*args: Any) -> None:
        calls.append("short")
        await short_way(*args)

    monkeypatch.setattr(light_kinds, "process_light_event", counted)
    short = operator_run(events)  # type: ignore[arg-type]
    assert len(calls) == len(events), "every event took the short way"
    monkeypatch.setattr(light_kinds, "light_kind", lambda registry, resource: None)
    through_kopf = operator_run(events)  # type: ignore[arg-type]

    assert short == through_kopf
    (pods, config_maps), wakes = short
    key = (c.LABEL_TRAINING_JOB, "team", "tiny")
    assert sorted(live.name for live in pods[key]) == ["tiny-0", "tiny-2"]  # tiny-1 deleted
    assert [live.name for live in config_maps[key]] == ["tiny-config"]
    # the listed pod, EVENTS (the failed and the deleted pod at once), not the unlabelled pod, its return
    assert wakes == [False, False, False, False, False, True, True, False]


def test_the_kinds_that_take_the_short_way_are_those_with_only_light_handlers() -> None:
    config = load_config(["--all-namespaces", "--standalone"])
    registry = build_registry(config, Kube())

    def light(kind: Kind) -> bool:
        return light_kinds.light_kind(registry, resource(kind)) is not None

    assert all(light(kind) for kind in (POD, JOB, CONFIG_MAP, SERVICE_ACCOUNT, SECRET))
    # the reconciled kinds have a daemon and a handler of their own
    assert not any(light(kind) for kind in (TRAINING_JOB, MODEL_DEPLOYMENT))

    other = kopf.OperatorRegistry()

    async def index(name: str, **_: Any) -> Any:
        return name

    async def heavy(**_: Any) -> None:
        return None

    kopf.index("", "v1", "configmaps", id="names", registry=other)(light_handlers.light(index))
    assert light_kinds.light_kind(other, CONFIG_MAPS) is not None
    kopf.on.event("", "v1", "configmaps", id="heavy", registry=other)(heavy)
    assert light_kinds.light_kind(other, CONFIG_MAPS) is None, "one handler not marked light"

    filtered = kopf.OperatorRegistry()
    kopf.index("", "v1", "pods", id="present", labels={"app": kopf.PRESENT}, registry=filtered)(
        light_handlers.light(index)
    )
    assert light_kinds.light_kind(filtered, PODS) is None, "a filter other than exact label values"
    assert light_kinds.light_kind(filtered, CONFIG_MAPS) is None, "no handler at all"


def test_a_failing_light_handler_is_logged_ignored_and_leaves_the_object_out_of_its_index(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found, woken, messages = failing_handlers(caplog)

    assert found == [{None: ["a"]}, {}]
    assert woken == ["a", "a"], "a failed index handler does not stop the watch-event handlers"
    assert "handler 'wake' failed on team/a; ignored" in messages
    assert "handler 'names' failed on team/a; ignored" in messages
    assert all(record.exc_info for record in caplog.records), "the traceback is logged"


def test_no_handler_runs_before_every_index_is_filled() -> None:
    registry = kopf.OperatorRegistry()
    woken: list[str] = []

    async def index(name: str, **_: Any) -> Any:
        return name

    async def event(name: str, **_: Any) -> None:
        woken.append(name)

    kopf.index("", "v1", "configmaps", id="names", registry=registry)(light_handlers.light(index))
    kopf.on.event("", "v1", "configmaps", id="wake", registry=registry)(light_handlers.light(event))
    operator = Operator(registry, kopf.OperatorSettings())

    async def scenario() -> tuple[Any, list[str], list[str]]:
        indexed = aiotoggles.ToggleSet(all)
        mine = await indexed.make_toggle(False, name="configmaps listed")
        other_kind = await indexed.make_toggle(False, name="pods listed")
        processed = asyncio.ensure_future(
            processing.process_resource_event(
                lifecycle=None,
                indexers=operator.indexers,
                registry=registry,
                settings=operator.settings,
                memories=operator.memories,
                memobase=kopf.Memo(),
                resource=CONFIG_MAPS,
                raw_event={"type": None, "object": child("ConfigMap", "a")},
                event_queue=asyncio.Queue(),
                resource_indexed=mine,
                operator_indexed=indexed,
            )
        )
        await asyncio.sleep(0.05)
        before = (operator.index("names"), list(woken))
        await indexed.drop_toggle(other_kind)  # the other kind's listing is done
        await asyncio.wait_for(processed, 5)
        return before, list(woken), [t.name for t in indexed]

    (index_before, woken_before), woken_after, left = asyncio.run(scenario())
    assert index_before == {None: ["a"]}, "the index is filled at once"
    assert woken_before == [], "the handler waits for every kind's listing"
    assert woken_after == ["a"]
    assert left == [], "its own toggle dropped"


def test_kopf_changed_shape_leaves_kopf_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async def other(**_: Any) -> None:
        return None

    monkeypatch.setattr(processing, "process_resource_event", other)
    assert not light_kinds.install()
    assert processing.process_resource_event is other
