"""The launcher checks the final `vllm serve` command line with vLLM's own argument parser.

vLLM is not in the project's venv (the serving image starts from vLLM's own image): these tests run
the launcher in a separate venv with the vLLM release the serving image is built on
(``images/serving-runtime.Dockerfile``), installed into the cache on first use. vLLM's CLI is real;
the only stand-ins are the GPU probe (this machine has none) and the termination-log path, both
replaced inside ``vllm_launcher_driver.py``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import CACHE
from tests.unit.test_serve_engines import FULL_SETTINGS

pytestmark = pytest.mark.runtime

REPO = Path(__file__).resolve().parents[2]
VLLM_VERSION = re.search(
    r"^ARG VLLM_VERSION=(\S+)$", (REPO / "images/serving-runtime.Dockerfile").read_text(), re.MULTILINE
).group(1)  # type: ignore[union-attr]
VLLM_VENV = CACHE / f"vllm-{VLLM_VERSION}"
INSTALL_TIMEOUT_SECONDS = 3600
"""First use downloads vLLM and its CUDA wheels (uv hard-links what the project's venv already has)."""
DRIVER_TIMEOUT_SECONDS = 900
"""Importing vLLM's CLI takes about a minute on two busy cores (torch and vLLM's config modules)."""
EXIT_CONFIG_ERROR = 2


def vllm_python() -> Path:
    """The vLLM venv's interpreter, created on first use with the project's uv."""
    python = VLLM_VENV / "bin" / "python"
    if (VLLM_VENV / ".installed").exists():
        return python
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "--python", "3.11", str(VLLM_VENV)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(python), f"vllm=={VLLM_VERSION}"],
        check=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    (VLLM_VENV / ".installed").write_text(VLLM_VERSION)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vllm_config(root: Path, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": {"uri": str(root / "model")},
        "servedModelName": "llama",
        "engine": {"type": "vllm", "settings": settings},
        "host": "127.0.0.1",
        "metricsPort": free_port(),
        "cacheDir": str(root / "cache"),
    }


REFUSED: list[tuple[str, list[str], tuple[str, ...]]] = [
    (
        "typo-in-a-flag",
        ["--max-modle-len", "4096"],
        ("engine.settings.extraArgs: vLLM refuses", "unrecognized arguments: --max-modle-len 4096"),
    ),
    (
        "value-outside-the-choices",
        ["--kv-cache-dtype", "int3"],
        ("engine.settings.extraArgs", "argument --kv-cache-dtype: invalid choice: 'int3'"),
    ),
    (
        "not-a-number",
        ["--max-num-batched-tokens", "lots"],
        ("engine.settings.extraArgs", "argument --max-num-batched-tokens", "'lots'"),
    ),
    (
        "flag-needing-another",
        ["--enable-auto-tool-choice"],
        ("engine.settings.extraArgs", "--enable-auto-tool-choice requires --tool-call-parser"),
    ),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case through the launcher in the vLLM venv, in one process (vLLM's CLI imports once)."""
    root = tmp_path_factory.mktemp("vllm-args")
    for directory in ("model", "adapters/sql"):
        (root / directory).mkdir(parents=True)
    every_setting = {
        **FULL_SETTINGS,
        "loraAdapters": [{"name": "sql", "uri": str(root / "adapters/sql")}],
        "extraArgs": ["--seed", "7", "--enforce-eager", "--kv-cache-dtype", "fp8"],
    }
    cases = [
        {"id": "defaults", "expect": "accept", "config": vllm_config(root, {})},
        {"id": "every-setting", "expect": "accept", "config": vllm_config(root, every_setting)},
        *(
            {"id": id_, "expect": "refuse", "config": vllm_config(root, {"extraArgs": extra})}
            for id_, extra, _ in REFUSED
        ),
    ]
    (root / "cases.json").write_text(json.dumps(cases))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("operator", "serving-runtime")),
        "PATH": f"{VLLM_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [
            str(vllm_python()),
            str(Path(__file__).with_name("vllm_launcher_driver.py")),
            str(root / "cases.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return {r["id"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])}


def test_generated_command_lines_are_accepted_by_vllm(results: dict[str, dict[str, Any]]) -> None:
    assert results["defaults"]["argv"][:3] == ["vllm", "serve", results["defaults"]["argv"][2]]
    argv = results["every-setting"]["argv"]
    for flag in ("--tensor-parallel-size", "--max-model-len", "--dtype", "--quantization",
                 "--gpu-memory-utilization", "--max-num-seqs", "--no-enable-prefix-caching", "--enable-lora",
                 "--lora-modules", "--kv-cache-dtype"):  # fmt: skip
        assert flag in argv


@pytest.mark.parametrize(
    ("case", "expected"), [(i, e) for i, _, e in REFUSED], ids=[i for i, _, _ in REFUSED]
)
def test_a_bad_extra_arg_stops_the_launcher_naming_it(
    results: dict[str, dict[str, Any]], case: str, expected: tuple[str, ...]
) -> None:
    result = results[case]
    assert result["exit"] == EXIT_CONFIG_ERROR
    for text in expected:
        assert text in result["message"], result["message"]
