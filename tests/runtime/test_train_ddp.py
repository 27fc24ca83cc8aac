"""Two-process DDP on CPU (gloo): training, export, SIGTERM checkpoint and exact resume.

One straight run of STEPS steps is the reference: the runtime's Trainer in the session's shared
two-rank launch (tests.runtime.shared_launches), since what it checks is what training does. A second
run with the same config, a real `torchrun -m modelfleet_train` launch (the signal's way through
torchrun is part of the subject), gets SIGTERM (as the kubelet sends to torchrun on eviction)
part-way: it must save a complete checkpoint and exit. A resume from that checkpoint, launched the same
way, must then reproduce the straight run's losses step for step, while ignoring a newer checkpoint
that is torn and one that never got its manifest.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from modelfleet_train.checkpoints import LATEST, LocalStore, step_name

from tests.runtime.conftest import TinyAssets, run_training, runtime_config, start_training, step_losses
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime

STEPS = 30
"""Long enough (a few seconds of training) for the SIGTERM, sent once step 5 is logged, to land
mid-run: torchrun forwards it at once, and the ranks stop at the next step's end."""


def ddp_config(tiny: TinyAssets, output: Path) -> dict[str, Any]:
    config = runtime_config(tiny, output)
    config["hyperparameters"]["maxSteps"] = STEPS
    config["checkpoint"] = {"intervalSteps": 12, "keepLast": 3}
    return config


@shared_case(nproc=2)
def straight_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    return Case(directory, [Run("train", ddp_config(request.getfixturevalue("tiny"), directory / "out"))])


@pytest.fixture(scope="module")
def straight(shared_trainer_runs: SharedLaunches) -> Path:
    case = shared_trainer_runs.case(straight_case)
    case.check()
    return case.directory / "out"


def test_full_fine_tune_learns_and_the_saved_model_reloads_and_generates(straight: Path) -> None:
    losses = step_losses(straight)
    assert sorted(losses) == list(range(1, STEPS + 1))
    first, last = (
        sum(losses[s] for s in range(1, 6)) / 5,
        sum(losses[s] for s in range(STEPS - 4, STEPS + 1)) / 5,
    )
    assert last < 0.6 * first, losses

    store = LocalStore(straight / "checkpoints")
    assert store.latest() == STEPS
    assert store.steps() == [12, 24, 30]
    assert all(store.problem(step) is None for step in store.steps())

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(straight)
    model = AutoModelForCausalLM.from_pretrained(straight)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How many red cats are there?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    generated = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer.startswith("There are"), answer


def wait_for_step(metrics_file: Path, step: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics_file.exists() and any(
            json.loads(line).get("step", 0) >= step for line in metrics_file.read_text().splitlines()
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"step {step} not reached in {timeout} s")


def fake_torn_checkpoints(store: LocalStore, complete_step: int) -> None:
    """A newer checkpoint published and then truncated, and an even newer one that never got a manifest."""
    torn, unfinished = complete_step + 2, complete_step + 3
    shutil.copytree(store.write_dir(complete_step), store.write_dir(torn))
    largest = max(
        (p for p in store.write_dir(torn).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    largest.write_bytes(largest.read_bytes()[: largest.stat().st_size // 2])
    (store.root / LATEST).write_text(str(torn))
    shutil.copytree(store.write_dir(complete_step), store.write_dir(unfinished))
    (store.write_dir(unfinished) / "manifest.json").unlink()


def test_sigterm_saves_a_complete_checkpoint_and_resume_reproduces_the_straight_run(
    straight: Path, tiny: TinyAssets, tmp_path: Path
) -> None:
    config = ddp_config(tiny, tmp_path / "out")
    process = start_training(config, tmp_path)
    try:
        wait_for_step(tmp_path / "out" / "training_metrics.jsonl", 5, timeout=240)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "checkpoint saved" in output, output[-4000:]
    assert process.returncode != 0, "an interrupted run must not look finished to the Job"

    store = LocalStore(tmp_path / "out" / "checkpoints")
    stopped_at = store.latest()
    assert stopped_at is not None and 5 <= stopped_at < STEPS
    assert store.problem(stopped_at) is None
    assert f"stopped at step {stopped_at} after a SIGTERM" in output
    assert max(step_losses(tmp_path / "out")) == stopped_at

    fake_torn_checkpoints(store, stopped_at)
    output = run_training(config, tmp_path)
    assert f"ignoring checkpoint {step_name(stopped_at + 2)}" in output
    assert f"ignoring checkpoint {step_name(stopped_at + 3)}: no manifest" in output
    assert f"at step {stopped_at}" in output

    resumed, reference = step_losses(tmp_path / "out"), step_losses(straight)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-6), step
