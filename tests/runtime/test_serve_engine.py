"""The launcher on the CPU engine (`transformers serve`) with a tiny Llama, and the benchmark client
against it. The engine starts once for the module (about 10 s); every test talks to it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from modelfleet_api.engines import command_for
from modelfleet_api.engines.base import ResolvedModel
from modelfleet_api.serving import EngineType, ServingRuntimeConfig

from hack import tinymodel

pytestmark = pytest.mark.runtime

SERVED_NAME = "tiny/llama"
STARTUP_TIMEOUT_SECONDS = 300
"""A bound on a hang, not a measurement: on a fresh machine the first start imports transformers and
torch from a cold page cache while the other tiers import the runtime image into the node (one run
took over 120 s there)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Engine:
    url: str
    metrics_url: str
    model_dir: Path
    launcher: subprocess.Popen[bytes]
    tokenizer: object


def wait_healthy(url: str, launcher: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise RuntimeError(f"launcher exited with {launcher.returncode} before the engine was healthy")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {STARTUP_TIMEOUT_SECONDS} s")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("serve")
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, save_dir=root / "model")
    port, metrics_port = free_port(), free_port()
    config = ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": str(root / "model")},
            "servedModelName": SERVED_NAME,
            "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
            "host": "127.0.0.1",
            "port": port,
            "metricsPort": metrics_port,
            "cacheDir": str(root / "cache"),
        }
    )
    (root / "serve.yaml").write_text(config.to_yaml())
    launcher = subprocess.Popen(
        [sys.executable, "-m", "modelfleet_serve.launcher", "--config", str(root / "serve.yaml")],
        # TMPDIR: the engine's processes, stopped by SIGTERM, leave their multiprocessing pymp-* directory
        env={
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(root / "hf"),
            "PATH": str(Path(sys.executable).parent),
            "TMPDIR": str(root),
        },
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", launcher)
        yield Engine(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", root / "model",
                     launcher, tokenizer)  # fmt: skip
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
            try:
                launcher.wait(30)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()


def test_engine_command_is_accepted_by_transformers_own_parser(tmp_path: Path) -> None:
    """Parses our argv with the `transformers` CLI's own click command (without running it)."""
    from transformers.cli.transformers import app  # a click group (huggingface_hub's typer factory)

    config = ServingRuntimeConfig.model_validate(
        {
            "model": {"uri": "/m", "trustRemoteCode": True},
            "servedModelName": "org/m",
            "cacheDir": str(tmp_path),
            "engine": {
                "type": "transformers",
                "settings": {"dtype": "bfloat16", "quantization": "bitsandbytes"},
            },
        }
    )
    argv = (
        command_for(EngineType.TRANSFORMERS)
        .launch(config, ResolvedModel(path=Path("/m")), None, gpu=False)
        .argv
    )
    serve = app.get_command(app.make_context("transformers", ["serve"]), "serve")
    params = serve.make_context("serve", argv[2:]).params
    assert (params["force_model"], params["device"], params["dtype"]) == ("org/m", "cpu", "bfloat16")
    assert (params["quantization"], params["trust_remote_code"], params["port"]) == ("bnb-4bit", True, 8000)


def test_streams_a_chat_completion_under_the_served_name(engine: Engine) -> None:
    """Usage comes in a last chunk when the request asks for it (OpenAI's ``stream_options``, as the
    benchmark client asks; transformers 5.25 sends it only then)."""
    body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "How many red cats?"}],
            "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    chunks = []
    with httpx.stream("POST", f"{engine.url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line.removeprefix("data: ")))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    usage = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    assert text and 0 < usage["completion_tokens"] <= 8 and usage["prompt_tokens"] > 0


def scrape(url: str) -> tuple[dict[str, float], str]:
    text = httpx.get(url, timeout=5).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {name: float(value) for name, value in samples}, text


def test_launcher_metrics_report_a_ready_engine(engine: Engine) -> None:
    values, text = scrape(engine.metrics_url)
    assert values["modelfleet_serve_engine_running"] == 1.0
    deadline = time.monotonic() + 5  # the health watcher polls every second
    while values["modelfleet_serve_engine_ready"] != 1.0 and time.monotonic() < deadline:
        time.sleep(0.5)
        values, text = scrape(engine.metrics_url)
    assert values["modelfleet_serve_engine_ready"] == 1.0
    assert values["modelfleet_serve_engine_startup_seconds"] > 0
    assert 'engine="transformers"' in text


def test_gpu_engine_on_this_machine_fails_with_a_clear_message(tmp_path: Path) -> None:
    config = ServingRuntimeConfig.model_validate(
        {"model": {"uri": str(tmp_path)}, "servedModelName": "m", "engine": {"type": "vllm"},
         "metricsPort": free_port(), "cacheDir": str(tmp_path)}
    )  # fmt: skip
    (tmp_path / "serve.yaml").write_text(config.to_yaml())
    result = subprocess.run(
        [sys.executable, "-m", "modelfleet_serve.launcher", "--config", str(tmp_path / "serve.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    assert "engine vllm needs an NVIDIA GPU" in result.stderr


def test_benchmark_client_against_the_engine_counts_what_the_server_reports(
    engine: Engine, tmp_path: Path
) -> None:
    from modelfleet_api.benchmark import BenchmarkRuntimeConfig
    from modelfleet_serve.bench.cli import run_benchmark

    config = BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": engine.url,
            "model": SERVED_NAME,
            "protocol": "openai-chat",
            "workload": {"synthetic": {"inputTokens": {"mean": 12}, "outputTokens": {"mean": 6}}, "seed": 3},
            "load": {"mode": "closed-loop", "concurrency": 2, "requests": 6, "warmupRequests": 1},
            "tokenizer": str(engine.model_dir),
            "outputDir": str(tmp_path),
        }
    )
    document, records = run_benchmark(config)
    summary = document["summary"]
    assert summary["completed"] == 6 and summary["errors"] == 0
    assert summary["token_count_source"] == {"usage": 6}
    measured = [r for r in records if not r.warmup]
    assert summary["output_tokens_total"] == sum(r.output_tokens or 0 for r in measured)
    for record in measured:
        # byte-level BPE: a token may end mid-character and stream no text, so chunks <= tokens
        assert 0 < len(record.chunk_times) <= record.output_tokens <= 6
    assert summary["ttft_ms"]["p50"] > 0 and summary["e2e_ms"]["p50"] >= summary["ttft_ms"]["p50"]
    assert summary["output_tokens_per_s"] > 0 and summary["requests_per_s"] > 0


def quality_config(engine: Engine, quality: dict[str, object], protocol: str = "openai-chat") -> Any:
    from modelfleet_api.benchmark import BenchmarkRuntimeConfig

    return BenchmarkRuntimeConfig.model_validate(
        {
            "targetUrl": engine.url,
            "model": SERVED_NAME,
            "protocol": protocol,
            "workload": {"synthetic": {"inputTokens": {"mean": 12}, "outputTokens": {"mean": 6}}},
            "load": {"mode": "closed-loop", "concurrency": 1, "requests": 1},
            "tokenizer": str(engine.model_dir),
            "quality": quality,
        }
    )


def test_a_reference_set_scores_the_engines_own_greedy_answers(engine: Engine, tmp_path: Path) -> None:
    """A row whose reference is the answer the engine streamed to the same prompt at temperature 0 (the
    tiny model's byte-level tokens may end mid-character, so the reference is the streamed text as a
    client assembles it) matches exactly when the quality step asks; a row whose reference is words the
    tiny model does not know does not."""
    from modelfleet_serve.bench.quality import score_quality

    prompt = "How many red cats?"
    body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8,
            "temperature": 0, "stream": True}  # fmt: skip
    pieces = []
    with httpx.stream("POST", f"{engine.url}/v1/chat/completions", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line.removeprefix("data: "))
                pieces += [c["delta"].get("content") or "" for c in chunk.get("choices") or []]
    own = "".join(pieces)
    rows = [{"prompt": prompt, "reference": own}, {"prompt": "Any blue owls?", "reference": "zebra quartz"}]
    references = tinymodel.write_jsonl(tmp_path / "references.jsonl", rows)
    quality = {"referenceSet": {"uri": str(references), "metrics": ["exactMatch"], "maxNewTokens": 8}}
    config = quality_config(engine, quality)

    scored = score_quality(config, config.quality)
    assert scored.scores == {"exactMatch": 0.5}, f"the engine streamed {own!r} when asked directly"


def test_log_likelihood_tasks_need_prompt_logprobs_the_engine_does_not_return(
    engine: Engine, tmp_path: Path
) -> None:
    """`transformers serve` answers /v1/completions without log-probabilities: a multiple-choice task
    is refused before it runs, naming the field."""
    from modelfleet_serve.bench.quality import score_quality

    from tests.runtime.test_train_evaluation import TASK, write_local_task

    write_local_task(tmp_path / "tasks")
    quality = {"lmEval": {"tasks": [TASK], "tasksUri": str(tmp_path / "tasks")}}
    config = quality_config(engine, quality, protocol="openai-completions")
    with pytest.raises(ValueError, match=r"quality.lmEval.tasks: log-likelihood tasks need the log-prob"):
        score_quality(config, config.quality)
