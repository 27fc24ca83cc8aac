"""Shared fixtures of the runtime tests: one tiny model, tokenizer and data set per session, a helper
that runs `torchrun -m modelfleet_train` on a config the way a worker pod does, and the real services
runtimes write to: Azurite (Azure Blob) and a Prometheus Pushgateway, each built or installed into the
cache on first use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hack import tinymodel
from hack.controlplane.cluster import wait_for

if TYPE_CHECKING:
    from tests.runtime.shared_launches import SharedLaunches

VENV_BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
TORCH_EXTENSIONS = CACHE / "torch_extensions"
"""DeepSpeed's JIT-compiled ops: shared across runs so only the first compiles (about 40 s)."""
AZURITE_DIR = CACHE / "azurite"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's published development-account key (not a secret)."""
AZURITE_ACCOUNT = "devstoreaccount1"
PUSHGATEWAY_VERSION = "v1.11.1"
PUSHGATEWAY_BIN = CACHE / f"pushgateway-{PUSHGATEWAY_VERSION}" / "bin" / "pushgateway"


@dataclass(frozen=True)
class TinyAssets:
    model: Path
    instructions: Path
    chat: Path
    pretrain: Path
    preferences: Path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyAssets:
    root = tmp_path_factory.mktemp("tiny")
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, root / "model")
    return TinyAssets(
        model=root / "model",
        instructions=tinymodel.write_jsonl(root / "instructions.jsonl", tinymodel.instruction_rows(256)),
        chat=tinymodel.write_jsonl(root / "chat.jsonl", tinymodel.chat_rows(128)),
        pretrain=tinymodel.write_jsonl(root / "pretrain.jsonl", tinymodel.pretrain_rows(256)),
        preferences=tinymodel.write_jsonl(root / "preferences.jsonl", tinymodel.dpo_rows(128)),
    )


@pytest.fixture(scope="session")
def tied_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with its head tied to the input embeddings (like Llama 3.2 1B/3B)."""
    target = tmp_path_factory.mktemp("tied") / "model"
    tinymodel.make_model(tinymodel.train_tokenizer(), target, tie_word_embeddings=True)
    return target


def runtime_config(tiny: TinyAssets, output: Path, **sections: Any) -> dict[str, Any]:
    """A small runtime config in wire form (camelCase); `sections` replace or extend top-level keys."""
    config: dict[str, Any] = {
        "job": {"name": "tiny", "namespace": "test", "uid": "uid-1"},
        "model": {"uri": str(tiny.model)},
        "dataset": {"uri": str(tiny.instructions), "format": "jsonl"},
        "method": {"type": "full"},
        "strategy": {"type": "ddp"},
        "precision": "fp32",
        "hyperparameters": {
            "learningRate": 3e-3,
            "lrSchedule": "cosine",
            "maxSteps": 8,
            "perDeviceBatchSize": 4,
            "gradientAccumulationSteps": 2,
            "sequenceLength": 64,
            "seed": 7,
        },
        "checkpoint": {"intervalSteps": 100, "keepLast": 2},
        "output": {"uri": str(output)},
        "topology": {"nodes": 1, "gpusPerNode": 2},
    }
    config.update(sections)
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runtime_env(work: Path) -> dict[str, str]:
    """The environment of a worker's processes; their temporary files (torchrun's ``torchelastic_*``
    directories among them) go under ``work``, not into the machine's /tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFLEET_", "PET_", "POD_"))}
    scratch = work / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    env.update(
        TMPDIR=str(scratch),
        HF_HUB_OFFLINE="1",
        HF_HOME=str(work / "hf"),
        MODELFLEET_CACHE_DIR=str(work / "cache"),
        MODELFLEET_METRICS_PORT=str(free_port()),
        TORCH_EXTENSIONS_DIR=str(TORCH_EXTENSIONS),
        DS_ACCELERATOR="cpu",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def torchrun_command(config_file: Path, nproc: int) -> list[str]:
    return module_torchrun_command("modelfleet_train", ["--config", str(config_file)], nproc)


def module_torchrun_command(module: str, args: list[str], nproc: int) -> list[str]:
    return [str(VENV_BIN / "torchrun"), "--standalone", f"--nproc-per-node={nproc}", "-m", module, *args]


def run_module_ranks(module: str, args: list[str], work: Path, env: dict[str, str], nproc: int = 2) -> str:
    """`python -m module args` on `nproc` ranks under torchrun; returns the log (also written to
    work/log.txt) and fails the test with it on a non-zero exit."""
    done = subprocess.run(
        module_torchrun_command(module, args, nproc), env=env, capture_output=True, text=True, timeout=540
    )
    output = done.stdout + done.stderr
    (work / "log.txt").write_text(output)
    assert done.returncode == 0, f"ranks exited {done.returncode}:\n{output[-6000:]}"
    return output


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_training(
    config: dict[str, Any], work: Path, nproc: int = 2, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`torchrun` on ``config``; ``env`` is added to the runtime's environment."""
    work.mkdir(parents=True, exist_ok=True)
    config_file = write_config(config, work / f"config-{len(list(work.glob('config-*')))}.yaml")
    return subprocess.Popen(
        torchrun_command(config_file, nproc),
        env=runtime_env(work) | (env or {}),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run_training(
    config: dict[str, Any],
    work: Path,
    nproc: int = 2,
    timeout: float = 540,
    env: dict[str, str] | None = None,
) -> str:
    """Run to the end; returns the combined log and fails the test with it on a non-zero exit."""
    process = start_training(config, work, nproc, env)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    assert process.returncode == 0, f"training exited {process.returncode}:\n{output[-6000:]}"
    return output


def step_losses(output_dir: Path) -> dict[int, float]:
    """Step -> loss from the run's JSON-lines metrics (every run appends, so a resume continues it)."""
    lines = (output_dir / "training_metrics.jsonl").read_text().splitlines()
    return {row["step"]: row["loss"] for row in map(json.loads, lines) if row["event"] == "step"}


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    """Until ``process`` listens on loopback ``port``; fails at once should it exit first."""

    def listening() -> bool:
        assert process.poll() is None, f"{what} exited with {process.returncode} before listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_for(listening, timeout, f"{what} to listen on port {port}")


def stop(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds: Azurite's node process has
    been seen to take over 10 s to exit on a loaded machine, which failed a teardown."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def install_azurite() -> Path:
    """Azurite from npm, installed into the cache once. Two test sessions use it (``make test`` runs
    the runtime tier's serving and training files side by side), so it is installed into a directory
    of its own and renamed into place whole: the session that loses the race uses the winner's."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="azurite-install-") as work:
        staged = Path(work) / "azurite"
        subprocess.run(
            ["npm", "install", "--prefix", str(staged), "azurite@3"],
            check=True,
            capture_output=True,
            timeout=600,
        )
        try:
            staged.rename(AZURITE_DIR)
        except OSError:  # another session installed it first
            assert binary.exists(), f"{AZURITE_DIR} exists without {binary}: remove it and run again"
    return binary


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running blob emulator (Azurite, from npm); yields its connection string."""
    binary = install_azurite()
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--silent",
            "--skipApiVersionCheck",
            # Azurite collects telemetry unless told not to and sends it to Application Insights, off
            # this machine; with no route out, its SDK kept each run's batch in /tmp/appInsights-node*/
            "--disableTelemetry",
            "--location",
            str(tmp_path_factory.mktemp("azurite")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Azurite starts in seconds, but took over 60 s with four test sessions loading the machine
        wait_for_port(port, process, "azurite", timeout=180)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        )
    finally:
        stop(process)


def build_pushgateway() -> Path:
    """The Prometheus Pushgateway, built from its Go module into the cache (about a minute, once).

    Built inside a throwaway module that requires it: `go install pkg@version` also asks the module
    proxy for the version list (deprecation check), which the proxy here does not serve."""
    if PUSHGATEWAY_BIN.exists():
        return PUSHGATEWAY_BIN
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="pushgateway-build-") as work:
        module = Path(work)
        requirement = f"require github.com/prometheus/pushgateway {PUSHGATEWAY_VERSION}"
        (module / "go.mod").write_text(f"module pushgatewaybuild\n\ngo 1.24\n\n{requirement}\n")
        (module / "tools.go").write_text(
            '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/pushgateway"\n'
        )
        env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod -trimpath"}
        built = subprocess.run(
            ["go", "build", "-o", str(module / "pushgateway"), "github.com/prometheus/pushgateway"],
            cwd=module,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert built.returncode == 0, f"building the Pushgateway failed:\n{built.stderr[-4000:]}"
        PUSHGATEWAY_BIN.parent.mkdir(parents=True, exist_ok=True)
        (module / "pushgateway").replace(PUSHGATEWAY_BIN)  # whole or not at all
    return PUSHGATEWAY_BIN


@pytest.fixture(scope="session")
def pushgateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus Pushgateway on a free loopback port; yields its URL."""
    binary = build_pushgateway()
    port = free_port()
    process = subprocess.Popen(
        [str(binary), f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "the Pushgateway")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def parse_exposition(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {sample name (with labels, when any): value}."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return parse_exposition(response.read().decode())


@dataclass
class KubeApi:
    """A stand-in Kubernetes API that records the ConfigMap patches rank 0 sends (what the operator
    would read back), and a kubeconfig pointing at it."""

    kubeconfig: Path
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def patches_of(self, configmap: str) -> list[dict[str, Any]]:
        """The bodies of the patches sent to `configmap`, in order."""
        return [body for path, body in self.patches if path.split("?")[0].rsplit("/", 1)[-1] == configmap]


@contextmanager
def serving_kube_api(kubeconfig: Path) -> Iterator[KubeApi]:
    """A `KubeApi` listening on a free loopback port while the context lasts."""
    api = KubeApi(kubeconfig)

    class RecordPatches(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            api.patches.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {}}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordPatches)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [
                    {"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "fake", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            }
        )
    )
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApi]:
    with serving_kube_api(tmp_path / "kubeconfig") as api:
        yield api


@pytest.fixture(scope="session")
def session_kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    """One `KubeApi` for the shared launches' runs; each run reports to a ConfigMap of its own name
    (`KubeApi.patches_of`)."""
    with serving_kube_api(tmp_path_factory.mktemp("kube-api") / "kubeconfig") as api:
        yield api


@pytest.fixture(scope="session")
def shared_trainer_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SharedLaunches:
    """The session's shared Trainer launches (tests.runtime.shared_launches)."""
    from tests.runtime.shared_launches import SharedLaunches  # it imports this module

    return SharedLaunches(request, tmp_path_factory.mktemp("shared-runs"))
