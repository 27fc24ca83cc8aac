"""Operator core helpers: conditions (JobSet semantics), status diffing, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from modelfleet_operator.conditions import is_true, set_condition
from modelfleet_operator.config import OperatorConfig, load_config
from modelfleet_operator.status import status_patch

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)


def test_condition_keeps_its_transition_time_unless_the_status_flips() -> None:
    first = set_condition(
        [], type_="Scheduled", status=False, reason="WaitingForCapacity", message="0/2", now=T0, generation=1
    )
    assert first == [
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
    assert same_status[0]["lastTransitionTime"] == "2026-11-22T09:00:00Z"
    assert (same_status[0]["message"], same_status[0]["observedGeneration"]) == ("1/2", 2)
    flipped = set_condition(
        same_status,
        type_="Scheduled",
        status=True,
        reason="AllWorkersScheduled",
        message="2/2",
        now=later,
        generation=2,
    )
    assert flipped[0]["lastTransitionTime"] == "2026-11-22T09:01:00Z"
    assert is_true(flipped, "Scheduled") and not is_true(flipped, "Running")


def test_other_conditions_keep_their_place() -> None:
    conditions = set_condition([], type_="A", status=True, reason="R", message="", now=T0, generation=None)
    conditions = set_condition(
        conditions, type_="B", status=True, reason="R", message="", now=T0, generation=None
    )
    conditions = set_condition(
        conditions, type_="A", status=False, reason="Q", message="", now=T0, generation=None
    )
    assert [(c["type"], c["status"]) for c in conditions] == [("A", "False"), ("B", "True")]
    assert "observedGeneration" not in conditions[0]


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
    }
    assert load_config([], env) == OperatorConfig(
        training_image="env/image:1", namespaces=("a", "b"), standalone=True, resync_seconds=2.0
    )
    flagged = load_config(["-A", "--training-image", "flag/image:2", "--priority", "100"], env)
    assert (flagged.namespaces, flagged.training_image, flagged.priority) == ((), "flag/image:2", 100)
    assert load_config(["-n", "x", "-n", "y"], {}).namespaces == ("x", "y")
    assert load_config([], {}) == OperatorConfig()


def test_replicas_of_one_deployment_get_distinct_stable_peering_priorities() -> None:
    first = load_config([], {"POD_ID": "modelfleet-operator-7d9f8-abcde"}).priority
    second = load_config([], {"HOSTNAME": "modelfleet-operator-7d9f8-fghij"}).priority
    assert first != second and min(first, second) >= 1 and max(first, second) <= 1_000_000
    assert load_config([], {"HOSTNAME": "modelfleet-operator-7d9f8-abcde"}).priority == first
    assert load_config([], {"POD_NAME": "x", "MODELFLEET_PRIORITY": "7"}).priority == 7
