"""kopf_fixes.late_discovery: a kind whose CRD is Established before the API server's discovery lists
it (the discovery controller works from its own queue) is still watched: kopf's own handler of the
CRD event runs once discovery lists the kind. Discovery here is a stand-in (a scripted
``scan_resources``); kopf's handler, registry and insights are its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import scanning
from kopf._cogs.configs import configuration
from kopf._cogs.structs import references
from kopf._core.reactor import observation
from modelfleet_operator import kopf_fixes
from modelfleet_operator.kopf_fixes import late_discovery

pytestmark = pytest.mark.unit

WORKLOADS = references.Resource(
    "kueue.x-k8s.io",
    "v1beta2",
    "workloads",
    kind="Workload",
    namespaced=True,
    verbs=["get", "list", "watch", "patch"],
)


def workloads_crd(*, established: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "workloads.kueue.x-k8s.io"}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "group": "kueue.x-k8s.io",
            "names": {"plural": "workloads", "kind": "Workload"},
            "versions": [{"name": "v1beta2", "served": True}, {"name": "v1beta1", "served": False}],
        },
        "status": {"conditions": [{"type": "Established", "status": "True" if established else "False"}]},
    }


class ScriptedDiscovery:
    """Answers kopf's discovery reads: nothing for the first ``late`` reads, then the Workload kind."""

    def __init__(self, late: int) -> None:
        self.late = late
        self.reads = 0

    async def __call__(self, *, groups: Iterable[str] | None = None, **_: Any) -> set[references.Resource]:
        self.reads += 1
        return set() if self.reads <= self.late else {WORKLOADS}


def watched_after(
    event: dict[str, Any], discovery: ScriptedDiscovery, monkeypatch: pytest.MonkeyPatch
) -> bool:
    """kopf's own handler of one CRD event (as installed), with a registry that indexes Workloads:
    whether kopf then watches them."""
    monkeypatch.setattr(scanning, "scan_resources", discovery)
    monkeypatch.setattr(late_discovery, "FIRST_PAUSE_SECONDS", 0.001)
    registry = kopf.OperatorRegistry()

    @kopf.index("kueue.x-k8s.io", "workloads", registry=registry)
    def by_name(name: str, **_: Any) -> dict[str, str]:
        return {name: name}

    async def scenario() -> bool:
        insights = references.Insights()
        await observation.process_discovered_resource_event(
            raw_event=event, settings=configuration.OperatorSettings(), registry=registry, insights=insights
        )
        return WORKLOADS in insights.watched_resources

    return asyncio.run(scenario())


@pytest.fixture(autouse=True)
def fixed() -> None:
    assert kopf_fixes.install()
    assert kopf_fixes.install(), "a second install is a no-op"
    assert getattr(observation.process_discovered_resource_event, late_discovery._FIXED)


def test_a_kind_listed_in_discovery_after_its_crd_is_established_is_watched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    discovery = ScriptedDiscovery(late=3)
    assert watched_after({"type": "MODIFIED", "object": workloads_crd()}, discovery, monkeypatch)
    assert discovery.reads == 5, "three reads miss it, the fourth finds it, then kopf's own read"


def test_without_the_fix_kopf_misses_a_kind_discovery_lists_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defect the fix is for, shown on kopf's own handler: its one re-read misses the kind."""
    unfixed = observation.process_discovered_resource_event.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(observation, "process_discovered_resource_event", unfixed)
    assert not watched_after(
        {"type": "MODIFIED", "object": workloads_crd()}, ScriptedDiscovery(late=1), monkeypatch
    )


@pytest.mark.parametrize(
    "crd",
    [workloads_crd(established=False), workloads_crd(deleting=True)],
    ids=["not-established-yet", "being-deleted"],
)
def test_events_of_a_crd_discovery_need_not_list_go_to_kopf_at_once(
    crd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    discovery = ScriptedDiscovery(late=1)
    assert not watched_after({"type": "MODIFIED", "object": crd}, discovery, monkeypatch)
    assert discovery.reads == 1, "only kopf's own read"


def test_discovery_that_never_lists_the_kind_is_waited_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(late_discovery, "WAIT_SECONDS", 0.05)
    monkeypatch.setattr(late_discovery, "LONGEST_PAUSE_SECONDS", 0.01)
    discovery = ScriptedDiscovery(late=10**6)
    assert not watched_after({"type": "MODIFIED", "object": workloads_crd()}, discovery, monkeypatch)
    assert "discovery still does not list workloads.v1beta2" in caplog.text


def test_only_served_versions_are_waited_for() -> None:
    assert late_discovery.served_kinds(workloads_crd()) == {("v1beta2", "workloads")}
