"""An engine's Python package, at the release its serving image pins, in a venv of the cache.

The tests of the engines' own argument parsers (``test_serve_engine_args``) run each parser script
with such a venv's ``python3``, as the launcher runs it with the image's ``python3`` in the pod. The
venv is made on first use with the project's uv, in ``CACHE/<package>-<version>``, and reused; the
version is read from the image's Dockerfile (``ARG <NAME>_VERSION=...``), the one place that pins it.
"""

from __future__ import annotations

import fcntl
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.runtime.conftest import CACHE

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_SECONDS = 3600
"""First use downloads the engine and its CUDA wheels (uv hard-links what its cache already has)."""


@dataclass(frozen=True)
class EngineVenv:
    """``package`` at the version ``images/<dockerfile>`` pins in ``ARG <version_arg>``."""

    package: str
    dockerfile: str
    version_arg: str
    excluded: tuple[str, ...] = ()
    """Dependencies left out of the install because they cannot be installed here (each says why
    where it is named). The parser never imports them: if it did, its script would exit 3 (parser
    unavailable) and the test would fail."""

    @property
    def version(self) -> str:
        text = (REPO / "images" / self.dockerfile).read_text()
        found = re.search(rf"^ARG {self.version_arg}=(\S+)$", text, re.MULTILINE)
        assert found, f"images/{self.dockerfile} has no 'ARG {self.version_arg}=...' line"
        return found.group(1)

    @property
    def path(self) -> Path:
        return CACHE / f"{self.package}-{self.version}"

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def python(self) -> Path:
        """The venv's interpreter; the venv is made on first use, under a lock (pytest-xdist workers
        may ask at once), niced (the install shares the machine with the test run)."""
        python = self.bin / "python3"
        marker = self.path / ".installed"
        CACHE.mkdir(parents=True, exist_ok=True)
        with (CACHE / f"{self.path.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if marker.exists():
                return python
            uv = str(Path(sys.executable).parent / "uv")
            # --clear: what an interrupted first use left behind is started over.
            subprocess.run([uv, "venv", "-q", "--clear", "--python", "3.11", str(self.path)], check=True)
            excludes = self.path / "excluded.txt"
            excludes.write_text("".join(f"{name}\n" for name in self.excluded))
            subprocess.run(
                ["nice", "-n", "19", uv, "pip", "install", "-q", "--python", str(python),
                 "--excludes", str(excludes), f"{self.package}=={self.version}"],
                check=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
            )  # fmt: skip
            marker.write_text(self.version)
        return python


VLLM = EngineVenv("vllm", "serving-vllm.Dockerfile", "VLLM_VERSION")
SGLANG = EngineVenv(
    "sglang",
    "serving-sglang.Dockerfile",
    "SGLANG_VERSION",
    # SGLang 0.5.19 requires cuda-tile==1.6.0rc5, on PyPI only as a placeholder sdist whose build
    # downloads the real wheel from pypi.nvidia.com, which is not reachable here (the build fails
    # with "The installation of cuda-tile for version 1.6.0rc5 failed"). Its server arguments do not
    # import it.
    excluded=("cuda-tile",),
)
LMDEPLOY = EngineVenv("lmdeploy", "serving-lmdeploy.Dockerfile", "LMDEPLOY_VERSION")
