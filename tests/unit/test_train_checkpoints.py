"""Checkpoint completeness, choice of the resume point, retention, and atomic publication."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelfleet_train.checkpoints import (
    LATEST,
    MANIFEST,
    LocalStore,
    atomic_write_text,
    choose_resume_step,
    manifest_problem,
    step_name,
    steps_to_prune,
)

pytestmark = pytest.mark.unit


def write_checkpoint(store: LocalStore, step: int, files: dict[str, bytes], publish: bool = True) -> None:
    directory = store.write_dir(step)
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    if publish:
        store.publish(step, store.publish_files(step))


def test_manifest_problem_names_what_is_wrong() -> None:
    assert manifest_problem({"a": 3}, {"a": 3, "extra": 1}) is None
    assert manifest_problem(None, {"a": 3}) == "no manifest (the save did not finish)"
    assert manifest_problem({"a": 3, "b": 1}, {"a": 3}) == "b is missing"
    assert manifest_problem({"a": 3}, {"a": 2}) == "a has 2 bytes, the manifest says 3"


def test_resume_prefers_latest_then_the_newest_complete_checkpoint() -> None:
    problems = {10: None, 20: "torn", 30: "no manifest"}
    assert choose_resume_step(10, [10, 20, 30], problems.get) == 10
    assert choose_resume_step(20, [10, 20, 30], problems.get) == 10
    assert choose_resume_step(None, [10, 20, 30], problems.get) == 10
    assert choose_resume_step(None, [], problems.get) is None
    assert choose_resume_step(20, [20, 30], problems.get) is None


def test_prune_keeps_the_newest_complete_and_latest_and_removes_torn_leftovers() -> None:
    steps = [10, 20, 30, 40, 50]
    assert steps_to_prune(steps, complete={10, 20, 40}, keep_last=2, latest=40) == [10, 30]
    # a torn save newer than every complete checkpoint may still be in progress elsewhere: kept
    assert steps_to_prune(steps, complete={10, 20}, keep_last=1, latest=20) == [10]


def test_prune_never_removes_the_protected_best_checkpoint() -> None:
    steps = [10, 20, 30, 40]
    complete = set(steps)
    assert steps_to_prune(steps, complete, keep_last=1, latest=40) == [10, 20, 30]
    assert steps_to_prune(steps, complete, keep_last=1, latest=40, protected=20) == [10, 30]


def test_local_store_publishes_manifest_then_latest_and_detects_truncation(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_checkpoint(store, 5, {"state/__0_0.distcp": b"x" * 100, "trainer_state.json": b"{}"})
    write_checkpoint(store, 10, {"state/__0_0.distcp": b"y" * 100, "trainer_state.json": b"{}"})
    assert store.latest() == 10 and store.steps() == [5, 10]
    manifest = json.loads((tmp_path / step_name(10) / MANIFEST).read_text())
    assert manifest == {"state/__0_0.distcp": 100, "trainer_state.json": 2}

    (tmp_path / step_name(10) / "state" / "__0_0.distcp").write_bytes(b"y" * 40)  # torn write
    assert store.problem(10) == "state/__0_0.distcp has 40 bytes, the manifest says 100"
    assert choose_resume_step(store.latest(), store.steps(), store.problem) == 5

    write_checkpoint(store, 15, {"state/__0_0.distcp": b"z" * 100}, publish=False)  # killed mid-save
    assert store.latest() == 10
    assert store.problem(15) == "no manifest (the save did not finish)"


def test_atomic_write_replaces_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / LATEST
    atomic_write_text(target, "10")
    atomic_write_text(target, "20")
    assert target.read_text() == "20"
    assert [p.name for p in tmp_path.iterdir()] == [LATEST]
