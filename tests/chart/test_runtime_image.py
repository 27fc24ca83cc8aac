"""The CPU runtime image built here without Docker (``hack.image``): what its docker archive declares,
and what runs inside it (``buildah run`` on the built image, chrooted; no daemon).

`make test` builds the image first (`make image-cpu`); run alone, the fixture builds it when missing,
which takes minutes the first time (hence the long timeouts).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.image import RuntimeImage, runtime_image
from hack.image.buildah import Buildah
from hack.image.runtime import CACHE, IMAGE_DIR

pytestmark = [pytest.mark.chart, pytest.mark.timeout(3600)]

CHECK = """
import importlib.util, os
import torch, transformers, deepspeed, modelfleet_train, modelfleet_serve
from deepspeed.git_version_info import installed_ops
assert os.getuid() == 65532, os.getuid()
assert installed_ops["deepspeed_shm_comm"] and installed_ops["cpu_adam"], installed_ops
assert importlib.util.find_spec("triton") is None, "triton is GPU-only and left out"
torch.manual_seed(0)
model = torch.nn.Linear(8, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)  # small enough to descend at every step
losses = []
for _ in range(5):
    loss = model(torch.ones(4, 8)).pow(2).mean()
    optimizer.zero_grad(); loss.backward(); optimizer.step(); losses.append(loss.item())
assert losses[-1] < losses[0], losses
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)
"""


@pytest.fixture(scope="module")
def image() -> RuntimeImage:
    return runtime_image()


@pytest.fixture(scope="module")
def archive(image: RuntimeImage) -> Iterator[tuple[dict[str, Any], dict[str, Any], set[str]]]:
    """The archive's manifest entry, image config and member names."""
    with tarfile.open(image.archive) as tar:
        names = set(tar.getnames())
        (manifest,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    yield manifest, config, names


def test_archive_carries_the_reference_ctr_imports_it_under(
    image: RuntimeImage, archive: tuple[dict[str, Any], dict[str, Any], set[str]]
) -> None:
    manifest, _, names = archive
    assert manifest["RepoTags"] == [image.ref]
    assert image.ref.startswith("modelfleet.local/runtime-cpu:") and len(image.tag) == 16
    assert set(manifest["Layers"]) <= names


def test_image_runs_as_the_numeric_user_with_no_entry_point(
    archive: tuple[dict[str, Any], dict[str, Any], set[str]],
) -> None:
    _, config, _ = archive
    settings = config["config"]
    assert settings["User"] == "65532:65532"
    assert not settings.get("Entrypoint")
    assert settings.get("Cmd") in (None, ["/bin/bash"]), (
        "no runtime runs by default (Debian's shell, as in debian:bookworm)"
    )
    env = dict(item.split("=", 1) for item in settings["Env"])
    assert env["PATH"].startswith("/opt/modelfleet/bin:/opt/venv/bin:")
    assert env["DS_ACCELERATOR"] == "cpu"
    assert settings["Labels"]["org.opencontainers.image.title"] == "modelfleet-runtime-cpu"


def run_in(image: RuntimeImage, *command: str) -> subprocess.CompletedProcess[str]:
    buildah = Buildah(store=IMAGE_DIR / "containers", logs=CACHE / "logs")
    container = buildah.run("from", "--pull=never", image.ref).strip()
    try:
        return subprocess.run(
            [*buildah.command, "run", "--isolation", "chroot", container, "--", *command],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        buildah.run("rm", container)


def test_runtimes_import_and_torch_trains_on_the_cpu(image: RuntimeImage) -> None:
    done = run_in(image, "python", "-c", CHECK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cuda False" in done.stdout


@pytest.mark.parametrize("command", ["modelfleet-serve", "modelfleet-bench", "torchrun"])
def test_entry_points_start(image: RuntimeImage, command: str) -> None:
    done = run_in(image, command, "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage:" in done.stdout


def test_archive_is_named_by_the_inputs_it_was_built_from(image: RuntimeImage) -> None:
    record = json.loads(image.build_record.read_text())
    assert record["ref"] == image.ref
    assert record["archiveBytes"] == Path(image.archive).stat().st_size
