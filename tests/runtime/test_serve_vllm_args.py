"""The launcher checks the final `vllm serve` command line with vLLM's own argument parser.

In the serving image the launcher has a venv of its own and runs vLLM's parser with the image's
`python3` (``modelfleet_serve.engines.parsers.vllm_cli``). Here the launcher runs from the project's venv
as it would from its own, and `python3` on PATH is a venv with the vLLM release of the serving image
(``images/serving-vllm.Dockerfile``), installed into the cache on first use. vLLM's CLI is real; the
only stand-ins are the GPU probe (this machine has none) and the termination-log path.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.engines import command_for
from modelfleet_api.engines.base import ResolvedModel
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_serve import engines as host
from modelfleet_serve import launcher
from modelfleet_serve.engines import parser_check
from modelfleet_serve.launcher_metrics import LauncherMetrics

from tests.runtime.conftest import CACHE
from tests.unit.test_serve_engines import FULL_SETTINGS

pytestmark = pytest.mark.runtime

REPO = Path(__file__).resolve().parents[2]
VLLM_VERSION = re.search(
    r"^ARG VLLM_VERSION=(\S+)$", (REPO / "images/serving-vllm.Dockerfile").read_text(), re.MULTILINE
).group(1)  # type: ignore[union-attr]
VLLM_VENV = CACHE / f"vllm-{VLLM_VERSION}"
INSTALL_TIMEOUT_SECONDS = 3600
"""First use downloads vLLM and its CUDA wheels (uv hard-links what the project's venv already has)."""


def vllm_python() -> Path:
    """The vLLM venv's interpreter, created on first use with the project's uv."""
    python = VLLM_VENV / "bin" / "python3"
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


def vllm_config(root: Path, settings: dict[str, Any]) -> ServingRuntimeConfig:
    return ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": str(root / "model")},
            "servedModelName": "llama",
            "engine": {"type": "vllm", "settings": settings},
            "host": "127.0.0.1",
            "metricsPort": free_port(),
            "cacheDir": str(root / "cache"),
        }
    )


REFUSED: list[tuple[str, list[str], str]] = [
    ("typo-in-a-flag", ["--max-modle-len", "4096"], "unrecognized arguments: --max-modle-len 4096"),
    (
        "value-outside-the-choices",
        ["--kv-cache-dtype", "int3"],
        "argument --kv-cache-dtype: invalid choice: 'int3'",
    ),
    ("not-a-number", ["--max-num-batched-tokens", "lots"], "argument --max-num-batched-tokens"),
    (
        "flag-needing-another",
        ["--enable-auto-tool-choice"],
        "--enable-auto-tool-choice requires --tool-call-parser",
    ),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("vllm-args")
    for directory in ("model", "adapters/sql"):
        (made / directory).mkdir(parents=True)
    return made


def argv_of(config: ServingRuntimeConfig, root: Path) -> list[str]:
    """The command line the launcher builds for ``config`` on a GPU node."""
    models = ResolvedModel(path=root / "model", lora_adapters={"sql": root / "adapters/sql"})
    return command_for(EngineType.VLLM).launch(config, models, None, gpu=True).argv


@pytest.fixture(scope="module")
def verdicts(root: Path) -> dict[str, str | None]:
    """vLLM's verdict on every case's command line, from one run of its parser (it imports once)."""
    every_setting = {
        **FULL_SETTINGS,
        "loraAdapters": [{"name": "sql", "uri": str(root / "adapters/sql")}],
        "extraArgs": ["--seed", "7", "--enforce-eager", "--kv-cache-dtype", "fp8"],
    }
    cases = {
        "defaults": vllm_config(root, {}),
        "every-setting": vllm_config(root, every_setting),
        **{id_: vllm_config(root, {"extraArgs": extra}) for id_, extra, _ in REFUSED},
    }
    argvs = [argv_of(config, root) for config in cases.values()]
    found = parser_check.refusals(EngineType.VLLM, argvs, python=str(vllm_python()))
    return dict(zip(cases, found, strict=True))


def test_generated_command_lines_are_accepted_by_vllm(verdicts: dict[str, str | None], root: Path) -> None:
    assert verdicts["defaults"] is None and verdicts["every-setting"] is None
    argv = argv_of(vllm_config(root, {**FULL_SETTINGS, "loraAdapters": [{"name": "sql", "uri": "/a"}]}), root)
    for flag in ("--tensor-parallel-size", "--max-model-len", "--dtype", "--quantization",
                 "--gpu-memory-utilization", "--max-num-seqs", "--no-enable-prefix-caching", "--enable-lora",
                 "--lora-modules"):  # fmt: skip
        assert flag in argv


@pytest.mark.parametrize(
    ("case", "expected"), [(i, e) for i, _, e in REFUSED], ids=[i for i, _, _ in REFUSED]
)
def test_vllm_refuses_a_bad_extra_arg_in_its_own_words(
    verdicts: dict[str, str | None], case: str, expected: str
) -> None:
    assert verdicts[case] is not None and expected in verdicts[case]  # type: ignore[operator]


def test_the_launcher_stops_before_the_engine_naming_the_field(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole launcher (``modelfleet-serve``) on a typo: exit 2 before anything starts, the field and
    vLLM's words in the termination message."""
    monkeypatch.setattr(host, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(launcher, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(launcher, "TERMINATION_LOG", tmp_path / "termination-log")
    (tmp_path / "termination-log").write_text("")
    vllm_python()
    monkeypatch.setenv("PATH", f"{VLLM_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = vllm_config(root, {"extraArgs": ["--max-modle-len", "4096"]})
    code = launcher.run(config, command_for(EngineType.VLLM), LauncherMetrics())
    message = (tmp_path / "termination-log").read_text()
    assert code == launcher.EXIT_CONFIG_ERROR
    assert "engine.settings.extraArgs: vLLM refuses ['--max-modle-len', '4096']" in message
    assert "unrecognized arguments: --max-modle-len 4096" in message
