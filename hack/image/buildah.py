"""buildah with the project's own image store under the cache directory (not the machine's).

Every call runs as root (buildah's rootful mode; mmdebstrap's root mode needs it too). Long steps
write their output to a log under the cache's ``logs/``; a failed step raises ``ImageBuildFailed``
naming the step, its log and the log's last lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap"}
"""Command -> Debian package (`make image-cpu` installs them)."""


class ImageBuildFailed(RuntimeError):
    """An image build step failed; the message names the step and its log."""

    def __init__(self, step: str, log: Path | None, detail: str) -> None:
        tail = ""
        if log is not None and log.exists():
            lines = log.read_text(errors="replace").splitlines()[-20:]
            tail = "\n  last log lines:\n    " + "\n    ".join(lines)
        where = f"; log: {log}" if log is not None else ""
        super().__init__(f"image build step '{step}' failed: {detail}{where}{tail}")
        self.step = step
        self.log = log


def require_tools() -> None:
    """Fail with what to install when buildah or mmdebstrap is missing, or when not root."""
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise ImageBuildFailed(
            "tools",
            None,
            f"{', '.join(missing)} not installed: `make image-cpu` installs them (Debian packages)",
        )
    if os.geteuid() != 0:
        raise ImageBuildFailed(
            "tools", None, "building the image needs root (buildah's and mmdebstrap's root mode)"
        )


@dataclass(frozen=True)
class Buildah:
    store: Path
    """containers/storage root of the project's images."""
    logs: Path

    @property
    def command(self) -> list[str]:
        """``buildah`` with the store's global options."""
        return [
            "buildah",
            "--root",
            str(self.store / "storage"),
            "--runroot",
            str(self.store / "run"),
            "--storage-driver",
            "overlay",
        ]

    @property
    def env(self) -> dict[str, str]:
        """The environment of every call: buildah's temporary files (a layer's whole diff while it is
        committed, gigabytes for the dependency layer) under the store, not in /var/tmp, so an
        interrupted build leaves nothing outside the cache and ``remove_stale`` clears them."""
        tmp = self.store / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(tmp)}

    def run(self, *args: str) -> str:
        """A short buildah command; its stdout."""
        done = subprocess.run([*self.command, *args], capture_output=True, text=True, env=self.env)
        if done.returncode != 0:
            raise ImageBuildFailed(
                f"buildah {args[0]}", None, done.stderr.strip() or f"exit {done.returncode}"
            )
        return done.stdout

    def build_step(self, step: str, *args: str) -> None:
        """A long buildah command, output to ``logs/image-STEP.log``."""
        self.step(step, [*self.command, *args])

    def step(self, step: str, argv: list[str]) -> None:
        """Any long command of the build, output to ``logs/image-STEP.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"image-{step}.log"
        with log.open("w") as out:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        if done.returncode != 0:
            detail = f"exit {done.returncode}"
            if "no space left on device" in log.read_text(errors="replace"):
                free = shutil.disk_usage(self.store).free / 2**30
                detail += f"; the disk is full ({free:.1f} GiB free under {self.store} now)"
            raise ImageBuildFailed(step, log, detail)

    def has_image(self, ref: str) -> bool:
        done = subprocess.run(
            [*self.command, "inspect", "--type", "image", ref], capture_output=True, text=True, env=self.env
        )
        return done.returncode == 0

    def prune_dangling(self, rounds: int = 64) -> None:
        """Remove untagged images no other image builds on (layers of inputs no longer kept), leaf by
        leaf until none is left; images a container still uses stay."""
        for _ in range(rounds):
            out = self.run("images", "--quiet", "--filter", "dangling=true")
            ids = sorted(set(out.split()))
            env = self.env
            removed = [
                i
                for i in ids
                if subprocess.run([*self.command, "rmi", i], capture_output=True, env=env).returncode == 0
            ]
            if not removed:
                return

    def remove_stale(self) -> None:
        """Working containers and temporary files that an interrupted build left (a killed build never
        removes its container, which pins its layers). Only safe while holding the build lock."""
        self.run("rm", "--all")
        shutil.rmtree(self.store / "tmp", ignore_errors=True)

    def images(self, repository: str) -> list[str]:
        """``repository:tag`` of every tagged image of a repository in the store."""
        out = self.run("images", "--format", "{{.Name}}:{{.Tag}}")
        return [line for line in out.splitlines() if line.startswith(repository + ":")]
