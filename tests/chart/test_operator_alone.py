"""The operator stands alone: in a venv made from its image's lock file only (the dependencies of the
``operator`` extra, hash-checked, no others) plus the project installed without dependencies, the
operator's whole module graph imports and its kopf registry builds, and nothing of the training or
serving runtimes (their packages, torch, transformers, httpx) or the sync Kubernetes client is loaded.

This is what the operator image does (images/operator.Dockerfile), without Docker. The import-linter
contracts say the same statically; this test proves the lock file is enough at run time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.chart

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "images" / "requirements" / "operator.txt"
UV = Path(sys.executable).parent / "uv"
NOT_IN_THE_IMAGE = ("torch", "transformers", "httpx", "modelfleet_train", "modelfleet_serve", "kubernetes")
"""Top-level packages the operator must not load: the runtimes, their dependencies, the sync client."""

PROBE = """
import json, sys
import modelfleet_operator.__main__ as entry
from modelfleet_operator.config import load_config
from modelfleet_operator.kube import Kube
config = load_config(["--standalone", "-A"], {})
registry = entry.build_registry(config, Kube())
handlers = sum(1 for _ in registry._spawning.get_all_handlers())
print(json.dumps({"daemons": handlers, "modules": sorted(sys.modules)}))
"""


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, check=True
    )


def test_the_operator_runs_from_its_lock_file_alone(tmp_path: Path) -> None:
    venv = tmp_path / "operator-venv"
    python = venv / "bin" / "python"
    run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    run(UV, "pip", "install", "--quiet", "--python", python, "--require-hashes", "--no-deps", "-r", LOCK)
    run(UV, "pip", "install", "--quiet", "--python", python, "--no-deps", REPO)

    probe = json.loads(run(python, "-c", PROBE).stdout)

    assert probe["daemons"] == 3, "one daemon per kind"
    loaded = {name.split(".")[0] for name in probe["modules"]}
    assert not loaded & set(NOT_IN_THE_IMAGE), f"the operator loaded {sorted(loaded & set(NOT_IN_THE_IMAGE))}"
    assert "azure" not in loaded, "the Azure SDK (tens of MB) is imported only with the capacity manager on"
    usage = run(python, "-m", "modelfleet_operator", "--help").stdout
    assert "--workers" in usage and "--api-qps" in usage
