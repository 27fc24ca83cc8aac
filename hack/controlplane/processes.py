"""Start and stop the control plane's processes, each with a pid file and a log file.

Every process runs in its own session (process group), so ``stop`` can end it and anything it
spawned; a pid file is trusted only while ``/proc/PID/cmdline`` still names the same binary, so a
recycled pid is never killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class StepFailed(RuntimeError):
    """A start-up step failed; the message names the step and where its log is."""

    def __init__(self, step: str, log: Path | None, detail: str) -> None:
        where = f"; log: {log}" if log else ""
        tail = ""
        if log and log.exists():
            lines = log.read_text(errors="replace").splitlines()[-15:]
            tail = "\n  last log lines:\n    " + "\n    ".join(lines)
        super().__init__(f"control plane step '{step}' failed: {detail}{where}{tail}")
        self.step = step
        self.log = log


@dataclass(frozen=True)
class Process:
    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the live process this pid file names, else None.

        An empty ``/proc/PID/cmdline`` of a live (non-zombie) process is an exec still in progress: the
        kernel closes the parent's pipe (so ``Popen`` returns) before it sets up the new argv.
        """
        try:
            pid_text, binary = self.pid_file.read_text().split("\n", 1)
            pid = int(pid_text)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        if state == "Z" or (cmdline and cmdline != binary.strip()):
            return None  # exited, or the pid was recycled by another program
        return pid

    def alive(self) -> bool:
        return self.pid() is not None

    def exec_done(self) -> bool:
        """The pid file's process runs its binary now: not a launcher still on its way there, whose
        passing moment of empty cmdline between two execs ``alive`` takes for the binary's own."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            binary = self.pid_file.read_text().split("\n", 1)[1].strip()
        except (OSError, IndexError):
            return False
        return cmdline == binary

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, netns: Path | None = None
    ) -> None:
        """Starts ``argv``; with ``netns``, inside that network namespace (``nsenter`` execs ``argv[0]``
        in place, so the pid file names the process itself)."""
        launcher = ["nsenter", f"--net={netns}", "--"] if netns else []
        self.launch([*launcher, *argv], binary=argv[0], env=env)

    def launch(self, command: Sequence[str], binary: str, env: dict[str, str] | None = None) -> None:
        """Starts ``command``: ``binary`` itself, or a launcher that ends by exec'ing ``binary`` in place.

        A launcher is waited for until ``binary`` runs. Until then ``/proc`` shows the launcher (or the
        empty cmdline of an exec), which ``alive`` rightly does not take for ``binary``, so a readiness
        wait that began before the exec reported "the process exited" with an empty log: CI saw it for
        Kueue's launcher and for CoreDNS under ``nsenter`` on a loaded machine. A launcher that exits
        instead is reported with its exit status.
        """
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(f"{proc.pid}\n{binary}\n")
        if command[0] == binary:
            return
        wait_until(
            f"{self.name} (exec)", lambda: self.exec_done() or proc.poll() is not None, self.log_file, 60
        )
        if proc.poll() is not None:
            raise StepFailed(self.name, self.log_file, f"exited with {proc.returncode}")

    def stop(self, timeout: float = 15.0) -> None:
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.alive():
                time.sleep(0.1)
            if self.alive():
                _signal_group(pid, signal.SIGKILL)
                while self.alive():
                    time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def wait_until(
    step: str, check: Callable[[], object], log: Path | None, timeout: float, proc: Process | None = None
) -> None:
    """Polls ``check()`` until it returns truthy; raises StepFailed naming the step on timeout or exit."""
    deadline = time.monotonic() + timeout
    last_error = "not ready"
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # any probe error means "not yet"; the last one is reported
            last_error = f"{type(exc).__name__}: {exc}"
        if proc is not None and not proc.alive():
            raise StepFailed(step, log, "the process exited")
        time.sleep(0.2)
    raise StepFailed(step, log, f"not ready after {timeout:.0f}s ({last_error})")
