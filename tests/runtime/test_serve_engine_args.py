"""The launcher checks the final engine command line with the engine's own argument parser: vLLM,
SGLang and LMDeploy, the engines whose parser is a Python package that installs here.

In a serving image the launcher has a venv of its own and runs the engine's parser with the image's
`python3` (``modelfleet_serve.engines.parsers``). Here the launcher runs from the project's venv as it
would from its own, and `python3` is a venv with the engine release of the serving image
(``tests.runtime.engine_venv``), installed into the cache on first use. The engines' parsers are
real; the only stand-ins are the GPU probe (this machine has none) and the termination-log path.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.engines import command_for
from modelfleet_api.engines.base import ResolvedModel
from modelfleet_api.serving import ENGINE_SUPPORT, EngineType, ServingRuntimeConfig
from modelfleet_serve import engines as host
from modelfleet_serve import launcher
from modelfleet_serve.engines import parser_check
from modelfleet_serve.launcher_metrics import LauncherMetrics

from tests.runtime.conftest import free_port
from tests.runtime.engine_venv import LMDEPLOY, SGLANG, VLLM, EngineVenv
from tests.unit.test_serve_engines import FULL_SETTINGS

pytestmark = pytest.mark.runtime

TYPO = ["--max-modle-len", "4096"]
TYPO_REFUSED = "unrecognized arguments: --max-modle-len 4096"


@dataclass(frozen=True)
class Engine:
    type: EngineType
    venv: EngineVenv
    extra_args: list[str]
    """Flags of the engine's own that modelfleet does not generate (``extraArgs`` a user may add)."""
    refused: list[tuple[list[str], str]]
    """Bad ``extraArgs`` besides the typo ``TYPO``, each with words of the engine's refusal."""
    renamed: tuple[str, str]
    """A flag the builder generates (from ``FULL_SETTINGS``), and a spelling this release lacks."""

    @property
    def name(self) -> str:
        return parser_check.PARSERS[self.type][1]


ENGINES = {
    EngineType.VLLM: Engine(
        EngineType.VLLM,
        VLLM,
        extra_args=["--seed", "7", "--enforce-eager", "--kv-cache-dtype", "fp8"],
        refused=[
            (["--kv-cache-dtype", "int3"], "argument --kv-cache-dtype: invalid choice: 'int3'"),
            (["--max-num-batched-tokens", "lots"], "argument --max-num-batched-tokens"),
            (["--enable-auto-tool-choice"], "--enable-auto-tool-choice requires --tool-call-parser"),
        ],
        renamed=("--max-num-seqs", "--max-num-sequences"),
    ),
    EngineType.SGLANG: Engine(
        EngineType.SGLANG,
        SGLANG,
        extra_args=["--random-seed", "7", "--kv-cache-dtype", "fp8_e5m2", "--chunked-prefill-size", "4096"],
        refused=[
            (["--kv-cache-dtype", "int3"], "argument --kv-cache-dtype: invalid choice: 'int3'"),
            (["--max-prefill-tokens", "lots"], "--max-prefill-tokens: Invalid integer value: 'lots'"),
            # Refused by SGLang's argument resolution, after argparse.
            (["--prefill-decode-interval", "-1"], "--prefill-decode-interval must be non-negative"),
        ],
        renamed=("--max-running-requests", "--max-running-reqs"),
    ),
    EngineType.LMDEPLOY: Engine(
        EngineType.LMDEPLOY,
        LMDEPLOY,
        extra_args=["--quant-policy", "8", "--max-prefill-token-num", "4096", "--log-level", "INFO"],
        refused=[
            (["--backend", "tensorrt"], "argument --backend: invalid choice: 'tensorrt'"),
            (["--max-prefill-token-num", "lots"], "argument --max-prefill-token-num: invalid int value"),
            (["--quant-policy", "3"], "argument --quant-policy: invalid _parse value: '3'"),
        ],
        renamed=("--cache-max-entry-count", "--cache-max-entries"),
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (empty) model and one LoRA adapter, ``sql``: no parser reads them."""
    made = tmp_path_factory.mktemp("engine-args")
    for directory in ("model", "adapters/sql"):
        (made / directory).mkdir(parents=True)
    return made


def engine_config(
    engine: EngineType, root: Path, settings: dict[str, Any], **model: Any
) -> ServingRuntimeConfig:
    return ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": str(root / "model"), **model},
            "servedModelName": "llama",
            "engine": {"type": str(engine), "settings": settings},
            "host": "127.0.0.1",
            "metricsPort": free_port(),
            "cacheDir": str(root / "cache"),
        }
    )


def argv_of(config: ServingRuntimeConfig, root: Path, api_key: str | None = None) -> list[str]:
    """The command line the launcher builds for ``config`` on a GPU node."""
    adapters = {
        adapter.name: root / "adapters" / adapter.name for adapter in config.engine.settings.lora_adapters
    }
    model = ResolvedModel(path=root / "model", lora_adapters=adapters)
    return command_for(config.engine.type).launch(config, model, api_key, gpu=True).argv


def accepted_argvs(engine: Engine, root: Path) -> dict[str, list[str]]:
    """Command lines the engine must accept, by case: every setting at once (trusting remote code,
    with an API key), and each quantization, dtype and switch the engine supports (``ENGINE_SUPPORT``)
    on its own."""
    support = ENGINE_SUPPORT[engine.type]
    lora = {"loraAdapters": [{"name": "sql", "uri": str(root / "adapters/sql")}]}
    cases: dict[str, dict[str, Any]] = {
        "defaults": {},
        "lora": lora,
        "prefix-caching-on": {"prefixCaching": True},
        "prefix-caching-off": {"prefixCaching": False},
        **{f"quantization-{q}": {"quantization": q.value} for q in sorted(support.quantizations)},
        **{f"dtype-{d}": {"dtype": d.value} for d in sorted(support.dtypes)},
    }
    argvs = {
        case: argv_of(engine_config(engine.type, root, settings), root) for case, settings in cases.items()
    }
    every = {
        **FULL_SETTINGS,
        **(lora if support.lora_with_quantization else {}),
        "extraArgs": engine.extra_args,
    }
    argvs["every-setting"] = argv_of(
        engine_config(engine.type, root, every, trustRemoteCode=True), root, "secret"
    )
    return argvs


@pytest.fixture(scope="module", params=list(ENGINES), ids=str)
def engine(request: pytest.FixtureRequest) -> Engine:
    return ENGINES[request.param]


def renamed_argvs(engine: Engine, root: Path) -> tuple[list[str], list[str]]:
    """The generated command line with ``engine.renamed``'s flag spelt as this release does not know
    it, alone and followed by valid ``extraArgs``: as when a release renames a flag."""
    generated, renamed = engine.renamed
    argv = argv_of(engine_config(engine.type, root, {**FULL_SETTINGS, "extraArgs": engine.extra_args}), root)
    assert generated in argv
    argv = [renamed if arg == generated else arg for arg in argv]
    return argv[: len(argv) - len(engine.extra_args)], argv


@pytest.fixture(scope="module")
def verdicts(engine: Engine, root: Path) -> dict[str, str | None]:
    """The engine's verdict on the accepted cases' command lines, on those ending in bad ``extraArgs``
    (keyed by the args joined) and on the renamed flag's (``renamed-alone``, ``renamed-whole``), from
    one run of its parser: importing an engine's parser costs 10-30 s of CPU."""
    argvs = accepted_argvs(engine, root)
    for extra in [TYPO, *(extra for extra, _ in engine.refused)]:
        argvs[" ".join(extra)] = argv_of(engine_config(engine.type, root, {"extraArgs": extra}), root)
    argvs["renamed-alone"], argvs["renamed-whole"] = renamed_argvs(engine, root)
    found = parser_check.refusals(engine.type, list(argvs.values()), python=str(engine.venv.python()))
    return dict(zip(argvs, found, strict=True))


def test_generated_command_lines_are_accepted(
    engine: Engine, verdicts: dict[str, str | None], root: Path
) -> None:
    accepted = {case: verdicts[case] for case in accepted_argvs(engine, root)}
    assert accepted == dict.fromkeys(accepted)


def test_bad_extra_args_are_refused_in_the_engines_words(
    engine: Engine, verdicts: dict[str, str | None]
) -> None:
    for extra, words in [(TYPO, TYPO_REFUSED), *engine.refused]:
        refusal = verdicts[" ".join(extra)]
        assert refusal is not None and words in refusal, f"{extra}: {refusal}"


def test_a_refused_generated_flag_is_a_release_mismatch(
    engine: Engine, verdicts: dict[str, str | None]
) -> None:
    """A flag modelfleet generates that this release does not know (as when a release renames one),
    followed by valid ``extraArgs``: named as the image and modelfleet not matching, in the engine's
    own words, and not blamed on the user's field. (The launcher's whole path, which asks the parser
    for these two verdicts, runs in the test below.)"""
    renamed = engine.renamed[1]
    problem = parser_check.problem_of(
        engine.type, engine.extra_args, verdicts["renamed-alone"], verdicts["renamed-whole"]
    )
    assert problem is not None and problem.startswith(
        f"this {engine.name} release refuses the command line modelfleet generates (the serving image and "
        "modelfleet do not match): "
    )
    assert f"unrecognized arguments: {renamed}" in problem


def test_the_launcher_stops_before_the_engine_naming_the_field(
    engine: Engine, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole launcher (``modelfleet-serve``) on a typo, in the engine's image on a GPU node (the
    venv's ``bin`` first on PATH: its ``python3`` and the engine's programs): exit 2 before anything
    starts, the field and the engine's words in the termination message."""
    monkeypatch.setattr(host, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(launcher, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(launcher, "TERMINATION_LOG", tmp_path / "termination-log")
    (tmp_path / "termination-log").write_text("")
    engine.venv.python()
    monkeypatch.setenv("PATH", f"{engine.venv.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = engine_config(engine.type, root, {"extraArgs": TYPO})
    code = launcher.run(config, command_for(engine.type), LauncherMetrics())
    message = (tmp_path / "termination-log").read_text()
    assert code == launcher.EXIT_CONFIG_ERROR, message
    assert f"engine.settings.extraArgs: {engine.name} refuses {TYPO}" in message
    assert TYPO_REFUSED in message


@pytest.mark.parametrize("engine_type", list(parser_check.PARSERS), ids=str)
def test_a_parser_that_cannot_be_imported_is_said_plainly(engine_type: EngineType) -> None:
    """The parser script run by an interpreter without the engine (the project's venv): the check
    says that it cannot run, rather than passing the command line unchecked."""
    name = parser_check.PARSERS[engine_type][1]
    with pytest.raises(parser_check.ParserUnavailable, match=f"{name}'s argument parser cannot be imported"):
        parser_check.refusals(engine_type, [["x"]], python=sys.executable)
