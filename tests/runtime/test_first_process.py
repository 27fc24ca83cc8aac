"""The runtimes' first processes as PID 1 of a PID namespace of their own, as in a container: a SIGTERM
that comes while they start ends them at once (exit 143), nothing started.

The kernel gives PID 1 a signal only when it has a handler for it (``modelfleet_api.first_process``):
without one, a SIGTERM during start-up was dropped and the pod waited out its grace period (a serving
pod's 120 s). Each command here runs under ``unshare --pid --fork``; the test waits until the process
has a SIGTERM handler (``SigCgt`` in ``/proc/PID/status``), sends SIGTERM from outside the namespace,
as the kubelet's runtime does, and expects the process gone with 143 well within any grace period.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from modelfleet_api.serving import ServingRuntimeConfig

from tests.runtime.conftest import VENV_BIN, TinyAssets

pytestmark = pytest.mark.runtime

EXITED_ON_SIGTERM = 128 + signal.SIGTERM
PROMPTLY_SECONDS = 30.0
"""A bound on a hang, not a measurement: far below the serving pods' 120 s grace period."""


def _pid1_of(unshare: subprocess.Popen[str]) -> int:
    """The command's host PID: the only child of ``unshare --fork``, PID 1 in its namespace."""
    deadline = time.monotonic() + PROMPTLY_SECONDS
    children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
    while time.monotonic() < deadline:
        found = children.read_text().split()
        if found:
            return int(found[0])
        time.sleep(0.002)
    raise AssertionError("unshare started no child")


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def terminate_during_start(command: list[str], cwd: Path) -> tuple[int, str]:
    """``command`` run as PID 1 of a new PID namespace and sent SIGTERM once it has a handler: its exit
    code and output."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing: the test runs each command as PID 1 with it")
    unshare = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", *command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # TMPDIR: a SIGTERM during start-up can leave the supervisor's run directory (one run left a
        # /tmp/modelfleet-run-*)
        env={
            "PATH": f"{VENV_BIN}:/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(cwd / "hf"),
            "TMPDIR": str(cwd),
        },
    )
    try:
        pid = _pid1_of(unshare)
        deadline = time.monotonic() + PROMPTLY_SECONDS
        while not _catches_sigterm(pid):
            assert unshare.poll() is None, f"exited with {unshare.returncode} before it caught SIGTERM"
            assert time.monotonic() < deadline, "no SIGTERM handler"
            time.sleep(0.002)
        sent = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        output, _ = unshare.communicate(timeout=PROMPTLY_SECONDS)
        assert time.monotonic() - sent < PROMPTLY_SECONDS
        return unshare.returncode, output
    finally:
        if unshare.poll() is None:
            unshare.kill()
            unshare.wait()


def _serving_config(tiny: TinyAssets, root: Path) -> Path:
    config = ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": str(tiny.model)},
            "servedModelName": "tiny",
            "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
            "host": "127.0.0.1",
            "cacheDir": str(root / "cache"),
        }
    )
    path = root / "serve.yaml"
    path.write_text(config.to_yaml())
    return path


COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "modelfleet-serve": lambda config: [str(VENV_BIN / "modelfleet-serve"), "--config", str(config)],
    "modelfleet-serve download": lambda config: [
        str(VENV_BIN / "modelfleet-serve"), "download", "--config", str(config),
    ],
    "modelfleet-bench": lambda config: [str(VENV_BIN / "modelfleet-bench"), "run", "--config", str(config)],
    "training supervisor": lambda _: [
        sys.executable, "-m", "modelfleet_train.supervise", "--", "sleep", "600",
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_sigterm_during_start_up_ends_the_first_process(
    name: str, tiny: TinyAssets, tmp_path: Path
) -> None:
    command = COMMANDS[name](_serving_config(tiny, tmp_path))
    code, output = terminate_during_start(command, tmp_path)
    assert code == EXITED_ON_SIGTERM, output
    assert "starting engine" not in output, output
