"""Operator core: typed conditions (JobSet semantics), status diffing, settings, the projections and
drift comparison behind server-side apply, prune, the wake filter that ignores the operator's own
status writes, a daemon that waits for the events following a wake, and a pass that a cancellation
cannot cut short."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_operator.common.handlers import ObjectState, finish, pod_stops, sleep_until_woken
from modelfleet_operator.common.indexes import WORKLOADS_BY_JOB, Indexes, owner_keys, workload_keys
from modelfleet_operator.common.kinds import CONFIG_MAP, DEPLOYMENT, HTTP_ROUTE, JOB, POD, SERVICE
from modelfleet_operator.common.live import Live, drifted, matches, project
from modelfleet_operator.common.plan import Plan, to_apply, to_prune
from modelfleet_operator.conditions import is_true, set_condition, transitions
from modelfleet_operator.config import OperatorConfig, load_config
from modelfleet_operator.status import status_patch

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)


def test_condition_keeps_its_transition_time_unless_the_status_flips() -> None:
    first = set_condition(
        [], type_="Scheduled", status=False, reason="WaitingForCapacity", message="0/2", now=T0, generation=1
    )
    assert [x.to_wire() for x in first] == [
        {
            "type": "Scheduled",
            "status": "False",
            "reason": "WaitingForCapacity",
            "message": "0/2",
            "lastTransitionTime": "2026-11-22T09:00:00Z",
            "observedGeneration": 1,
        }
    ]
    later = T0 + timedelta(minutes=1)
    same_status = set_condition(
        first,
        type_="Scheduled",
        status=False,
        reason="WaitingForCapacity",
        message="1/2",
        now=later,
        generation=2,
    )
    assert same_status[0].last_transition_time == T0
    assert (same_status[0].message, same_status[0].observed_generation) == ("1/2", 2)
    flipped = set_condition(
        same_status,
        type_="Scheduled",
        status=True,
        reason="AllWorkersScheduled",
        message="2/2",
        now=later,
        generation=2,
    )
    assert flipped[0].last_transition_time == later
    assert is_true(flipped, "Scheduled") and not is_true(flipped, "Running")
    assert transitions(first, same_status) == [] and transitions(same_status, flipped) == flipped


def test_other_conditions_keep_their_place() -> None:
    conditions = set_condition([], type_="A", status=True, reason="R", message="", now=T0, generation=None)
    conditions = set_condition(
        conditions, type_="B", status=True, reason="R", message="", now=T0, generation=None
    )
    conditions = set_condition(
        conditions, type_="A", status=False, reason="Q", message="", now=T0, generation=None
    )
    assert [(x.type, x.status) for x in conditions] == [("A", "False"), ("B", "True")]
    assert "observedGeneration" not in conditions[0].to_wire()


def test_status_patch_only_on_change_and_removes_dropped_keys() -> None:
    old = {"phase": "Running", "restarts": 1, "gpuHoursUpdatedAt": "2026-11-22T09:00:00Z"}
    assert status_patch(old, dict(old)) is None
    assert status_patch(old, {"phase": "Failed", "restarts": 1}) == {
        "phase": "Failed",
        "gpuHoursUpdatedAt": None,
    }


def test_settings_from_flags_over_environment() -> None:
    env = {
        "MODELFLEET_TRAINING_IMAGE": "env/image:1",
        "MODELFLEET_NAMESPACES": "a, b",
        "MODELFLEET_STANDALONE": "true",
        "MODELFLEET_RESYNC_SECONDS": "2",
        "MODELFLEET_WORKERS": "8",
        "MODELFLEET_API_QPS": "50",
        "MODELFLEET_CHECK_SECRETS": "false",
    }
    assert load_config([], env) == OperatorConfig(
        training_image="env/image:1",
        namespaces=("a", "b"),
        standalone=True,
        resync_seconds=2.0,
        workers=8,
        api_qps=50.0,
        check_secrets=False,
    )
    flagged = load_config(
        ["-A", "--training-image", "flag/image:2", "--priority", "100", "--workers", "4"], env
    )
    assert (flagged.namespaces, flagged.training_image, flagged.priority, flagged.workers) == (
        (),
        "flag/image:2",
        100,
        4,
    )
    assert load_config(["-n", "x", "-n", "y"], {}).namespaces == ("x", "y")
    assert load_config([], {}) == OperatorConfig()
    assert OperatorConfig().check_secrets, "a Secret a spec names is checked unless turned off"
    assert OperatorConfig().resync_seconds >= 60, "a safety resync, not a poll"
    with pytest.raises(ValueError, match="workers must be at least 1"):
        load_config(["--workers", "0"], {})


def test_replicas_of_one_deployment_get_distinct_stable_peering_priorities() -> None:
    first = load_config([], {"POD_ID": "modelfleet-operator-7d9f8-abcde"}).priority
    second = load_config([], {"HOSTNAME": "modelfleet-operator-7d9f8-fghij"}).priority
    assert first != second and min(first, second) >= 1 and max(first, second) <= 1_000_000
    assert load_config([], {"HOSTNAME": "modelfleet-operator-7d9f8-abcde"}).priority == first
    assert load_config([], {"POD_NAME": "x", "MODELFLEET_PRIORITY": "7"}).priority == 7


# ---- what the indexes keep, and drift ------------------------------------------------------------
LABELS = {c.LABEL_TRAINING_JOB: "tj", c.LABEL_MANAGED_BY: c.MANAGED_BY}


def test_projections_keep_what_plans_read_and_who_applied_what() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "tj",
            "labels": LABELS,
            "resourceVersion": "42",
            "managedFields": [
                {
                    "manager": c.MANAGED_BY,
                    "operation": "Apply",
                    "fieldsV1": {"f:spec": {"f:parallelism": {}}},
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "fieldsV1": {"f:spec": {"f:suspend": {}}},
                },
            ],
        },
        "spec": {"parallelism": 2, "completions": 2, "template": {"spec": {"containers": [{"name": "x"}]}}},
        "status": {"active": 2, "startTime": "2026-11-22T09:00:00Z", "conditions": []},
    }
    assert project(JOB, job) == Live(
        manifest={
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "tj", "labels": LABELS},
            "spec": {"parallelism": 2, "completions": 2},
            "status": {"conditions": [], "active": 2, "startTime": "2026-11-22T09:00:00Z"},
        },
        operator_fields=frozenset({"spec.parallelism"}),
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": LABELS,
            "annotations": {"modelfleet.io/config-hash": "abc", "kubectl.kubernetes.io/last-applied": "{}"},
        },
        "spec": {"nodeName": "n", "containers": [{"name": "x", "image": "i"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "hostIP": "10.1.0.1"},
    }
    assert project(POD, pod).manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": LABELS, "annotations": {"modelfleet.io/config-hash": "abc"}},
        "spec": {"nodeName": "n"},
        "status": {"phase": "Running"},
    }
    assert owner_keys(LABELS, "ns") == [(c.LABEL_TRAINING_JOB, "ns", "tj")]


def route(*backends: tuple[str, int]) -> dict[str, Any]:
    refs = [{"name": name, "port": 8000, "weight": weight} for name, weight in backends]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat"},
        "spec": {"rules": [{"backendRefs": refs}]},
    }


def test_a_promoted_canarys_backend_left_in_an_http_route_is_drift() -> None:
    """HTTPRoute's lists are atomic for server-side apply: a backend the plan dropped stays until an
    apply replaces the list, so it is drift, although backendRefs are named items."""
    live = route(("chat-stable", 100), ("chat-canary", 0))
    assert drifted(HTTP_ROUTE, route(("chat-stable", 100)), live)
    assert not drifted(HTTP_ROUTE, route(("chat-stable", 100), ("chat-canary", 0)), live)
    # a Deployment's containers are a map by name: an item someone else added is not drift
    assert matches({"containers": [{"name": "a"}]}, {"containers": [{"name": "b"}, {"name": "a"}]})
    assert not matches(
        {"containers": [{"name": "a"}]}, {"containers": [{"name": "b"}, {"name": "a"}]}, atomic_lists=True
    )


def test_drift_is_a_wanted_field_that_differs_not_what_the_server_adds() -> None:
    wanted = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": "1"}},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "serve:1",
                            "env": [{"name": "A", "value": "1"}],
                            "resources": {"limits": {"cpu": "0.5", "memory": "1Gi", "nvidia.com/gpu": "1"}},
                            "volumeMounts": [{"name": "cache", "mountPath": "/c", "readOnly": False}],
                        }
                    ],
                    "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu"}],
                }
            },
        },
    }
    live = {
        "metadata": {"name": "d", "labels": {"a": "1", "added": "by-someone"}, "uid": "u"},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "serve:1",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "EXTRA", "value": "x"}, {"name": "A", "value": "1"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}},
                            "volumeMounts": [{"name": "cache", "mountPath": "/c"}],
                        }
                    ],
                    "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu"}],
                }
            },
        },
    }
    assert not drifted(DEPLOYMENT, wanted, live)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "edited:1"
    assert drifted(DEPLOYMENT, wanted, live)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "serve:1"
    live["spec"]["template"]["spec"]["tolerations"].append({"key": "other"})
    assert drifted(DEPLOYMENT, wanted, live), "an unnamed list must match item for item"
    assert matches({"data": {"k": "v"}}, {"data": {"k": "v", "added": "x"}}), "keys others add are theirs"
    assert not matches({"data": {"k": "v"}}, {"data": {"k": "edited"}})
    assert matches({"port": 8000, "readOnly": False, "args": []}, {"port": 8000}), "omitempty"


def test_a_job_compares_only_what_can_change_on_a_live_job() -> None:
    wanted = {
        "metadata": {"labels": {"a": "1"}},
        "spec": {
            "parallelism": 2,
            "completions": 2,
            "template": {"spec": {"containers": [{"image": "new"}]}},
        },
    }
    live = {"metadata": {"labels": {"a": "1"}}, "spec": {"parallelism": 2, "completions": 2}}
    assert not drifted(JOB, wanted, live), "the pod template is immutable: not compared"
    live["spec"]["parallelism"] = 1
    assert drifted(JOB, wanted, live)


def child(kind: str, name: str, uid: str = "owner", deleting: bool = False) -> Live:
    meta: dict[str, Any] = {"name": name, "ownerReferences": [{"uid": uid, "controller": True}]}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T09:00:00Z"
    return Live({"apiVersion": "v1", "kind": kind, "metadata": meta, "data": {"k": "v"}})


def test_apply_what_is_missing_or_drifted_and_prune_what_the_plan_no_longer_names() -> None:
    same = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"k": "v"}}
    edited = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "edited"}, "data": {"k": "new"}}
    new = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "new"}, "spec": {}}
    children = [
        child("ConfigMap", "same"),
        child("ConfigMap", "edited"),
        child("ConfigMap", "kept"),
        child("ConfigMap", "gone"),
        child("ConfigMap", "going", deleting=True),
        child("ConfigMap", "foreign", uid="someone-else"),
    ]
    plan: Plan[Any] = Plan(status=None, apply=(same, edited, new), keep=frozenset({("ConfigMap", "kept")}))

    def compare(wanted: dict[str, Any], live: Live) -> bool:
        return drifted(CONFIG_MAP if wanted["kind"] == "ConfigMap" else SERVICE, wanted, live.manifest)

    assert to_apply(plan, children, compare) == [edited, new]
    assert [x.name for x in to_prune(plan, children, "owner")] == ["gone"]


def test_indexes_are_read_by_owner_and_by_name() -> None:
    live = child("ConfigMap", "cm")
    indexes = Indexes(
        {
            CONFIG_MAP.index_id: {(c.LABEL_TRAINING_JOB, "ns", "tj"): [live]},
            POD.index_id: {(c.LABEL_TRAINING_JOB, "ns", "tj"): [Live({"metadata": {"name": "p"}})]},
            "serviceaccounts_by_name": {("ns", "runtime"): [True]},
            "customresourcedefinitions_by_name": {"scaledobjects.keda.sh": [{"served": ["v1alpha1"]}]},
        }
    )
    assert indexes.owned(c.LABEL_TRAINING_JOB, "ns", "tj", [CONFIG_MAP, JOB]) == [live]
    assert indexes.pods(c.LABEL_TRAINING_JOB, "ns", "tj") == [{"metadata": {"name": "p"}}]
    assert indexes.service_account_exists("ns", "runtime") and not indexes.service_account_exists("ns", "x")
    assert indexes.serves("scaledobjects.keda.sh", "v1alpha1") and indexes.serves("scaledobjects.keda.sh")
    assert not indexes.serves("httproutes.gateway.networking.k8s.io")


def test_a_kueue_workload_is_indexed_by_its_jobs_uid_with_only_its_conditions() -> None:
    reserved = {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": "no quota"}
    workload = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": "job-tj-1a2b3",
            "namespace": "ns",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "tj", "uid": "job-uid"}],
        },
        "spec": {"podSets": [{"name": "main", "count": 2, "template": {"spec": {"containers": []}}}]},
        "status": {
            "conditions": [
                {**reserved, "lastTransitionTime": "2026-11-22T09:00:00Z", "observedGeneration": 1}
            ]
        },
    }
    summary = {"metadata": {"name": "job-tj-1a2b3"}, "status": {"conditions": [reserved]}}

    assert workload_keys(workload) == {("ns", "job-uid"): summary}
    indexed = {key: [value] for key, value in workload_keys(workload).items()}  # kopf keeps a collection
    assert Indexes({WORKLOADS_BY_JOB: indexed}).workload("ns", "job-uid") == summary
    assert Indexes({WORKLOADS_BY_JOB: {}}).workload("ns", "other-uid") is None
    not_a_job = {
        **workload,
        "metadata": {**workload["metadata"], "ownerReferences": [{"kind": "Pod", "uid": "u"}]},
    }
    assert workload_keys(not_a_job) == {}


# ---- passes and wakes ----------------------------------------------------------------------------
def test_the_echo_of_the_operators_own_status_write_wakes_nothing() -> None:
    state = ObjectState(generation=1, known={"phase": "Pending"})
    state.wrote({"phase": "Scheduling"})
    state.wrote({"phase": "Running"})
    assert state.stored({"phase": "Pending"}) == {"phase": "Running"}, "plan from the latest write"

    assert not state.seen(1, {"phase": "Scheduling"}), "an older echo"
    assert not state.seen(1, {"phase": "Running"}), "the latest echo"
    assert state.pending == [] and state.stored({"phase": "Running"}) == {"phase": "Running"}
    assert not state.seen(1, {"phase": "Running"}), "a finalizer patch: same status, same generation"
    assert state.seen(2, {"phase": "Running"}), "a spec change"
    state.generation = 2
    assert state.seen(2, {"phase": "Edited"}), "a status this operator did not write"


class Stopped:
    """kopf's ``DaemonStopped`` as a daemon uses it: true once stopped, and ``await stopped.wait()``."""

    def __init__(self) -> None:
        self.flag = asyncio.Event()

    def __bool__(self) -> bool:
        return self.flag.is_set()

    async def wait(self) -> None:
        await self.flag.wait()


def test_a_woken_daemon_settles_so_the_events_after_the_wake_come_into_one_pass() -> None:
    async def scenario() -> None:
        wake, stopped = asyncio.Event(), Stopped()
        sleeping = asyncio.ensure_future(sleep_until_woken(wake, stopped, 600, settle=600))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        wake.set()
        await asyncio.sleep(0.01)
        assert not sleeping.done(), "woken, it waits for what follows"
        wake.set()  # the next event, within the settle time
        await asyncio.sleep(0.01)
        assert not sleeping.done()
        stopped.flag.set()  # a deletion does not wait for the settle time
        await asyncio.wait_for(sleeping, 5)
        assert not wake.is_set(), "both events are for the pass that follows"

        stopped = Stopped()
        stopped.flag.set()
        await asyncio.wait_for(sleep_until_woken(wake, stopped, 600, settle=600), 5)  # type: ignore[arg-type]

        urgent, running = asyncio.Event(), Stopped()
        sleeping = asyncio.ensure_future(sleep_until_woken(wake, running, 600, 600, urgent))  # type: ignore[arg-type]
        wake.set()
        await asyncio.sleep(0.01)
        assert not sleeping.done()
        wake.set()
        urgent.set()  # a pod that stops: its owner's pass runs at once
        await asyncio.wait_for(sleeping, 5)
        assert not wake.is_set() and not urgent.is_set()

    asyncio.run(scenario())


def test_a_pod_that_stops_is_urgent_news() -> None:
    running = {"metadata": {}, "status": {"phase": "Running"}}
    assert not pod_stops("MODIFIED", running)
    assert pod_stops("DELETED", running)
    assert pod_stops("MODIFIED", {**running, "metadata": {"deletionTimestamp": "2026-11-22T09:00:00Z"}})
    assert pod_stops("MODIFIED", {"metadata": {}, "status": {"phase": "Failed"}})


def test_a_cancelled_daemon_waits_for_its_pass_in_flight() -> None:
    """kopf cancels a deleted object's daemon; the pass it was running must end before the daemon's
    clean-up (which releases the capacity demand) runs."""
    order: list[str] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def one_pass() -> str:
            await release.wait()
            order.append("pass ended")
            return "done"

        async def daemon() -> None:
            try:
                await finish(asyncio.ensure_future(one_pass()))
            finally:
                order.append("forget")

        task = asyncio.ensure_future(daemon())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.01)
        task.cancel()  # kopf may cancel again
        await asyncio.sleep(0.01)
        assert order == []
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert order == ["pass ended", "forget"]


def test_a_kind_the_operator_does_not_index_is_not_checked() -> None:
    from modelfleet_operator.common import indexes as ix
    from modelfleet_operator.common.references import Reference

    secret = Reference(api_version="v1", kind="Secret", name="key", field="spec.apiKeySecret.name")
    claim = Reference(api_version="v1", kind="PersistentVolumeClaim", name="c", field="spec.model.uri")
    claims_only = Indexes({ix.REFERENCED["PersistentVolumeClaim"]: {("ns", "c"): [True]}})
    assert claims_only.look_up([secret, claim], "ns") == ix.Lookup(named=(claim,), missing=())
    both = Indexes({ix.REFERENCED["PersistentVolumeClaim"]: {}, ix.REFERENCED["Secret"]: {}})
    assert both.look_up([secret, claim], "ns").missing == (secret, claim)


def test_no_handler_reads_kopfs_essence_so_no_kind_builds_one() -> None:
    """``common.essence``: kopf's essence is read only by change handlers and by daemons or timers with
    ``idle=``; the operator registers neither, so its diff base builds and fetches none."""
    import kopf
    from modelfleet_operator.__main__ import build_registry
    from modelfleet_operator.common.essence import OwnKindsDiffBase
    from modelfleet_operator.kube import Kube

    registry = build_registry(load_config(["--all-namespaces", "--standalone"]), Kube())
    assert registry._changing.get_all_handlers() == []
    daemons = registry._spawning.get_all_handlers()
    assert daemons and all(getattr(handler, "idle", None) is None for handler in daemons)

    storage = OwnKindsDiffBase()
    annotated = kopf.Body(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"annotations": {"kopf.zalando.org/last-handled-configuration": '{"spec": {}}'}},
            "spec": {"a": 1},
        }
    )
    assert storage.build(body=annotated) == {}
    assert storage.fetch(body=annotated) is None
    kept = OwnKindsDiffBase([CONFIG_MAP])  # a kind whose handlers would read it keeps kopf's essence
    config_map = kopf.Body({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {"a": "1"}})
    assert kept.build(body=config_map) == {"data": {"a": "1"}}
