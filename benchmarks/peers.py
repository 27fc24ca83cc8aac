"""The load generators of the client comparison, each run as its users run it: its own CLI in its own
virtualenv, installed from PyPI into `~/.cache/modelfleet/peer-<name>-<version>` on first use.

Every client gets the same work, described once (`Job`): an open loop at a constant rate or a closed
loop at a concurrency, a number of requests, the same prompts, 4 output tokens each (`ignore_eos`
where the client has it), OpenAI completions streamed. Each adapter turns that into the client's own
options and reads back its own per-request output: for each request the client's TTFT, its mean
inter-token latency, and what names the server's record of it (the `r<N>` the neutral server puts in
its first chunk, or the `X-Request-ID` header AIPerf sends). The client's CPU is what the operating
system accounted to its whole process tree (`cpu_seconds`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.cputrace import CpuSampler

CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
RUN_TIMEOUT_SECONDS = 1800
FIRST_CHUNK = re.compile(r"^r(\d+) ")
"""The neutral server's first chunk: `r<arrival number> `."""
PR_SET_CHILD_SUBREAPER = 36


class Unavailable(Exception):
    """A client that cannot run here; the message says why (shown instead of its figures)."""


@dataclass(frozen=True)
class Job:
    """What every client is asked to do."""

    url: str
    model: str
    requests: int
    rate: float | None = None
    """Open loop: constant arrivals at this many requests/s."""
    concurrency: int | None = None
    """Closed loop: this many requests outstanding."""
    output_tokens: int = 4


@dataclass
class ClientRecord:
    """One request as the client recorded it."""

    key: tuple[str, object] | None
    """("n", N) from the `r<N>` of its output, or ("request_id", id): the server's record of it."""
    ttft: float | None
    """Seconds."""
    itl: float | None
    """Mean seconds between chunks after the first."""
    ok: bool


@dataclass
class Run:
    """One run of a client: its records, its own claims, and what it cost."""

    records: list[ClientRecord] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    claims: dict[str, Any] = field(default_factory=dict)
    """What the client reported about the run (modelfleet-bench: achieved rate, held load)."""
    cpu_trace: list[tuple[float, float]] = field(default_factory=list)
    """(perf_counter seconds, CPU seconds of the process tree so far) while it ran."""


def become_subreaper() -> None:
    """Orphaned descendants of a client (daemon services, multiprocessing helpers) are reparented to
    this process instead of init, so reaping them adds their CPU to RUSAGE_CHILDREN."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _children() -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


def _reap(keep: set[int], timeout: float = 60.0) -> None:
    """Wait for every child not in `keep` (a client's leftover processes) to end, then reap it."""
    deadline = time.monotonic() + timeout
    while leftovers := _children() - keep:
        if time.monotonic() > deadline:
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        for pid in leftovers:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)


@dataclass
class Finished:
    """A client's command that ran to its end."""

    code: int
    cpu_seconds: float
    """CPU of its whole process tree."""
    wall_seconds: float
    cpu_trace: list[tuple[float, float]]
    """(perf_counter seconds, CPU seconds so far) while it ran (`cputrace`)."""

    def run(self, records: list[ClientRecord], claims: dict[str, Any] | None = None) -> Run:
        return Run(records, self.cpu_seconds, self.wall_seconds, claims or {}, self.cpu_trace)


def run_command(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Finished:
    """Runs a client to its end. Its temporary files go under ``cwd`` (the comparison's own temporary
    directory): AIPerf leaves a memory-mapped copy of its data set in the temp directory of every run."""
    keep = _children()
    scratch = cwd / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {**env, "TMPDIR": str(scratch)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        sampler = CpuSampler(process.pid)
        try:
            code = process.wait(RUN_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            trace = sampler.stop()
    wall = time.monotonic() - started
    _reap(keep)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Finished(code, cpu, wall, trace)


def key_of_output(text: str | None) -> tuple[str, object] | None:
    match = FIRST_CHUNK.match(text or "")
    return ("n", int(match.group(1))) if match else None


@dataclass
class Venv:
    """A client installed from PyPI into its own cached virtualenv."""

    name: str
    requirement: str
    executable: str

    @property
    def path(self) -> Path:
        return CACHE / f"peer-{self.name}-{self.requirement.split('==')[-1]}"

    def ensure(self) -> Path:
        """The client's executable, installing it first if needed; Unavailable when it will not install."""
        binary = self.path / "bin" / self.executable
        marker = self.path / ".installed"
        recipe = f"{self.requirement} with bytecode"
        if binary.exists() and marker.exists() and marker.read_text() == recipe:
            return binary
        uv = Path(sys.executable).parent / "uv"
        log = CACHE / "logs" / f"install-{self.path.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        python = self.path / "bin" / "python"
        steps = [] if python.exists() else [[str(uv), "venv", "-q", "--python", "3.11", str(self.path)]]
        # compiled to bytecode as `pip install` does (uv does not by default): a start-up that compiles
        # the client's sources on every run is not what its users pay
        steps.append(
            [str(uv), "pip", "install", "--compile-bytecode", "--python", str(python), self.requirement]
        )
        with log.open("w") as sink:
            for step in steps:
                if subprocess.run(step, stdout=sink, stderr=subprocess.STDOUT).returncode != 0:
                    tail = " ".join(log.read_text().split()[-60:])
                    raise Unavailable(f"`uv pip install {self.requirement}` failed (log {log}): ...{tail}")
        marker.write_text(recipe)
        return binary


class Client:
    name: str
    version: str

    def prepare(self, workdir: Path) -> None:
        """Install what the client needs; Unavailable when it cannot run here."""

    def run(self, job: Job, workdir: Path) -> Run:
        raise NotImplementedError


@dataclass
class Prompts:
    """The prompts every client sends, in each client's input format."""

    texts: list[str]
    tokenizer: Path
    """A local tokenizer for the clients that insist on one (no model hub here)."""

    def lines(self, path: Path, count: int, encode: Callable[[str], str]) -> Path:
        path.write_text("".join(encode(self.texts[i % len(self.texts)]) + "\n" for i in range(count)))
        return path


class ModelfleetBench(Client):
    name = "modelfleet-bench"

    def __init__(self, prompts_file: Path, workers: int | None = None) -> None:
        from importlib.metadata import version

        self.version = version("modelfleet")
        self.prompts_file, self.workers = prompts_file, workers

    def config(self, job: Job, output: Path) -> dict[str, Any]:
        load: dict[str, Any] = {"requests": job.requests}
        if job.rate is not None:
            load |= {"mode": "open-loop", "requestRate": job.rate, "arrival": "constant"}
        else:
            load |= {"mode": "closed-loop", "concurrency": job.concurrency}
        config: dict[str, Any] = {
            "targetUrl": job.url,
            "model": job.model,
            "protocol": "openai-completions",
            "workload": {
                "promptsFile": {"uri": str(self.prompts_file), "outputTokens": {"mean": job.output_tokens}},
                "ignoreEos": True,
            },
            "load": load,
            "outputDir": str(output),
        }
        if self.workers is not None:
            config["workers"] = self.workers
        return config

    def run(self, job: Job, workdir: Path) -> Run:
        output = workdir / "modelfleet-bench"
        config = workdir / "modelfleet-bench.yaml"
        config.write_text(yaml.safe_dump(self.config(job, output)))
        command = [sys.executable, "-m", "modelfleet_serve.bench.cli", "run", "--config", str(config)]
        done = run_command(command, dict(os.environ), workdir, workdir / "modelfleet-bench.log")
        if done.code != 0:
            log = (workdir / "modelfleet-bench.log").read_text()[-3000:]
            raise RuntimeError(f"modelfleet-bench exited {done.code}: {log}")
        summary = json.loads((output / "results.json").read_text())["summary"]
        claims = {
            key: summary[key] for key in ("achieved_request_rate", "held_load", "late_requests", "errors")
        }
        claims["schedule_lag_ms"] = summary["schedule_lag_ms"]
        return done.run([], claims)


class GuideLLM(Client):
    name, version = "guidellm", "0.8.1"

    def __init__(self, prompts: Prompts) -> None:
        self.prompts = prompts
        self.venv = Venv(self.name, f"guidellm=={self.version}", "guidellm")

    def prepare(self, workdir: Path) -> None:
        self.binary = self.venv.ensure()

    def run(self, job: Job, workdir: Path) -> Run:
        report = workdir / "guidellm.json"
        report.unlink(missing_ok=True)
        data = self.prompts.lines(
            workdir / "guidellm-prompts.txt", job.requests, lambda text: text.replace("\n", " ")
        )
        profile = (
            f"kind=constant,rate={job.rate:g}"
            if job.rate is not None
            else f"kind=concurrent,streams={job.concurrency}"
        )
        command = [
            str(self.binary),
            "run",
            "--backend",
            f"kind=openai_http,target={job.url},model={job.model},request_format=/v1/completions,"
            f"max_tokens={job.output_tokens}",
            "--profile",
            profile,
            "--constraint",
            f"kind=max_requests,count={job.requests}",
            "--data",
            f"kind=text_file,path={data}",
            "--output",
            f"kind=json,path={report}",
            "--disable-console",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = run_command(command, env, workdir, workdir / "guidellm.log")
        if done.code != 0 or not report.exists():
            raise RuntimeError(
                f"guidellm exited {done.code}: {(workdir / 'guidellm.log').read_text()[-3000:]}"
            )
        (benchmark,) = json.loads(report.read_text())["benchmarks"]
        records = []
        for kind in ("successful", "errored", "incomplete"):
            for request in benchmark["requests"].get(kind) or []:
                t = request["info"]["timings"]
                tokens = (request.get("output_metrics") or {}).get("text_tokens") or 0
                first, last, start = (
                    t.get("first_token_iteration"),
                    t.get("last_token_iteration"),
                    t.get("request_start"),
                )
                ttft = first - start if first is not None and start is not None else None
                itl = (
                    (last - first) / (tokens - 1)
                    if first is not None and last is not None and tokens > 1
                    else None
                )
                records.append(
                    ClientRecord(key_of_output(request.get("output")), ttft, itl, kind == "successful")
                )
        return done.run(records)


class AIPerf(Client):
    name, version = "aiperf", "0.13.0"

    def __init__(self, prompts: Prompts) -> None:
        self.prompts = prompts
        self.venv = Venv(self.name, f"aiperf=={self.version}", "aiperf")

    def prepare(self, workdir: Path) -> None:
        self.binary = self.venv.ensure()

    def run(self, job: Job, workdir: Path) -> Run:
        artifacts = workdir / "aiperf"
        data = self.prompts.lines(
            workdir / "aiperf-prompts.jsonl", job.requests, lambda text: json.dumps({"text": text})
        )
        load = (
            ["--request-rate", f"{job.rate:g}", "--arrival-pattern", "constant"]
            if job.rate is not None
            else ["--concurrency", str(job.concurrency)]
        )
        command = [
            str(self.binary),
            "profile",
            "--model",
            job.model,
            "--url",
            job.url,
            "--endpoint-type",
            "completions",
            "--streaming",
            "--input-file",
            str(data),
            "--custom-dataset-type",
            "single_turn",
            "--request-count",
            str(job.requests),
            *load,
            "--output-tokens-mean",
            str(job.output_tokens),
            "--extra-inputs",
            "ignore_eos:true",
            "--use-server-token-count",
            "--tokenizer",
            str(self.prompts.tokenizer),
            "--artifact-dir",
            str(artifacts),
            "--ui",
            "none",
            "--no-gpu-telemetry",
        ]
        # AIPerf loads a local tokenizer only with the hub "online" (offline, it looks the path up in the
        # hub cache); a local path makes no network call either way
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        done = run_command(command, env, workdir, workdir / "aiperf.log")
        export = artifacts / "profile_export.jsonl"
        if done.code != 0 or not export.exists():
            raise RuntimeError(f"aiperf exited {done.code}: {(workdir / 'aiperf.log').read_text()[-3000:]}")
        records = []
        for line in export.read_text().splitlines():
            record = json.loads(line)
            metrics = record.get("metrics") or {}
            ttft, itl = metrics.get("time_to_first_token"), metrics.get("inter_token_latency")
            request_id = (record.get("metadata") or {}).get("x_request_id")
            records.append(
                ClientRecord(
                    ("request_id", request_id) if request_id else None,
                    ttft["value"] / 1000.0 if ttft else None,
                    itl["value"] / 1000.0 if itl else None,
                    not record.get("error") and ttft is not None,
                )
            )
        return done.run(records)


class VllmBench(Client):
    name, version = "vllm bench serve", "0.33.0"
    """vLLM 0.34.0 does not install from PyPI (it pins flashinfer-python==0.7.3, which PyPI does not
    serve); 0.33.0 is the newest that does. Constant arrivals: `--burstiness 1e6` makes its gamma
    inter-arrival times regular to 0.1 %."""

    def __init__(self, prompts: Prompts) -> None:
        self.prompts = prompts
        self.venv = Venv("vllm", f"vllm[bench]=={self.version}", "vllm")

    def prepare(self, workdir: Path) -> None:
        self.binary = self.venv.ensure()

    def run(self, job: Job, workdir: Path) -> Run:
        data = self.prompts.lines(
            workdir / "vllm-prompts.jsonl", job.requests, lambda text: json.dumps({"prompt": text})
        )
        result = workdir / "vllm.json"
        result.unlink(missing_ok=True)
        load = (
            ["--request-rate", f"{job.rate:g}", "--burstiness", "1000000"]
            if job.rate is not None
            else ["--request-rate", "inf", "--max-concurrency", str(job.concurrency)]
        )
        command = [
            str(self.binary),
            "bench",
            "serve",
            "--backend",
            "openai",
            "--base-url",
            job.url,
            "--endpoint",
            "/v1/completions",
            "--model",
            job.model,
            "--tokenizer",
            str(self.prompts.tokenizer),
            "--dataset-name",
            "custom",
            "--dataset-path",
            str(data),
            "--custom-output-len",
            str(job.output_tokens),
            "--num-prompts",
            str(job.requests),
            *load,
            "--ignore-eos",
            "--disable-tqdm",
            "--save-result",
            "--save-detailed",
            "--result-dir",
            str(workdir),
            "--result-filename",
            result.name,
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = run_command(command, env, workdir, workdir / "vllm.log")
        if done.code != 0 or not result.exists():
            raise RuntimeError(
                f"vllm bench serve exited {done.code}: {(workdir / 'vllm.log').read_text()[-3000:]}"
            )
        document = json.loads(result.read_text())
        records = []
        for ttft, itls, text, error in zip(
            document["ttfts"], document["itls"], document["generated_texts"], document["errors"], strict=True
        ):
            itl = sum(itls) / len(itls) if itls else None
            records.append(ClientRecord(key_of_output(text), ttft or None, itl, not error))
        return done.run(records)
