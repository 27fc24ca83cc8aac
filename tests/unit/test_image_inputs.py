"""What names the CPU runtime image: the Dockerfile, the files its COPY lines take, the base recipe."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hack.image import base
from hack.image.buildah import Buildah, ImageBuildFailed
from hack.image.inputs import BuildInputs, build_tables, copy_sources
from hack.image.runtime import DOCKERFILE, REPOSITORY, RuntimeImage, _remove_older, _require_space, planned

pytestmark = pytest.mark.unit

DOCKERFILE_TEXT = """\
FROM debian AS build
COPY req.txt \\
     extra.txt sub/
COPY --from=other /x /x
COPY src src
RUN echo
FROM debian
COPY --from=build /opt /opt
"""


def project(root: Path, *, git: bool) -> BuildInputs:
    (root / "src" / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE_TEXT)
    (root / "req.txt").write_text("a==1\n")
    (root / "extra.txt").write_text("b==2\n")
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "src" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (root / "unrelated.md").write_text("not copied\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / ".gitignore").write_text("__pycache__/\n")
    return BuildInputs.of(root / "Dockerfile", recipe="base-1", root=root)


def test_copy_sources_are_the_context_paths_of_copy_lines_without_from(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE_TEXT)
    assert copy_sources(tmp_path / "Dockerfile") == ["req.txt", "extra.txt", "src"]


@pytest.mark.parametrize("git", [True, False], ids=["git-checkout", "plain-tree"])
def test_hash_follows_copied_files_only(tmp_path: Path, git: bool) -> None:
    inputs = project(tmp_path, git=git)
    assert inputs.files == ("extra.txt", "req.txt", "src/pkg/mod.py")
    before = inputs.digest()

    (tmp_path / "unrelated.md").write_text("edited\n")
    (tmp_path / "src" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\1")
    assert BuildInputs.of(tmp_path / "Dockerfile", recipe="base-1", root=tmp_path).digest() == before

    (tmp_path / "src" / "pkg" / "mod.py").write_text("x = 2\n")
    edited = BuildInputs.of(tmp_path / "Dockerfile", recipe="base-1", root=tmp_path)
    assert edited.digest() != before
    assert BuildInputs.of(tmp_path / "Dockerfile", recipe="base-2", root=tmp_path).digest() != edited.digest()


def test_a_new_file_under_a_copied_directory_changes_the_hash(tmp_path: Path) -> None:
    inputs = project(tmp_path, git=True)
    (tmp_path / "src" / "pkg" / "new.py").write_text("y = 1\n")
    assert BuildInputs.of(tmp_path / "Dockerfile", recipe="base-1", root=tmp_path).digest() != inputs.digest()


def test_context_holds_exactly_the_hashed_files(tmp_path: Path) -> None:
    inputs = project(tmp_path / "repo", git=True)
    context = inputs.write_context(tmp_path / "context")
    assert context.digest() == inputs.digest()
    copied = sorted(
        str(p.relative_to(tmp_path / "context")) for p in (tmp_path / "context").rglob("*") if p.is_file()
    )
    assert copied == sorted(["Dockerfile", *inputs.files])


PYPROJECT_TEXT = """\
[build-system]
requires = ["hatchling"]

[project]
name = "pkg"
version = "1"

[project.optional-dependencies]
dev = [
  "pytest",
]

[tool.hatch.build.targets.wheel]
packages = ["src/pkg"]

# the tools' settings
[tool.mypy]
strict = true

[[tool.mypy.overrides]]
module = ["x.*"]
"""


def with_pyproject(root: Path) -> BuildInputs:
    project(root, git=True)
    (root / "Dockerfile").write_text(DOCKERFILE_TEXT.replace("COPY src src", "COPY pyproject.toml src src"))
    (root / "pyproject.toml").write_text(PYPROJECT_TEXT)
    return BuildInputs.of(root / "Dockerfile", recipe="base-1", root=root)


def test_pyproject_goes_in_with_the_tables_a_wheel_build_reads(tmp_path: Path) -> None:
    inputs = with_pyproject(tmp_path / "repo")
    kept = inputs.content("pyproject.toml").decode()
    assert kept == PYPROJECT_TEXT.split("\n# the tools'")[0]
    context = inputs.write_context(tmp_path / "context")
    assert (tmp_path / "context" / "pyproject.toml").read_text() == kept
    assert context.digest() == inputs.digest()


def test_the_tools_settings_leave_the_hash_alone_and_the_projects_change_it(tmp_path: Path) -> None:
    before = with_pyproject(tmp_path).digest()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT_TEXT.replace("strict = true", "strict = false\nplugins = []"))
    assert BuildInputs.of(tmp_path / "Dockerfile", recipe="base-1", root=tmp_path).digest() == before
    pyproject.write_text(PYPROJECT_TEXT.replace('"pytest",', '"pytest",\n  "ruff",'))
    assert BuildInputs.of(tmp_path / "Dockerfile", recipe="base-1", root=tmp_path).digest() != before


def test_a_header_like_line_inside_a_value_is_refused_not_cut() -> None:
    text = '[project]\nname = "pkg"\ndescription = """\n[tool.x]\n"""\n'
    with pytest.raises(ValueError, match=r"cutting pyproject\.toml down to build-system, .* went wrong"):
        build_tables(text)


def test_copying_a_missing_path_is_named(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\nCOPY gone.txt /\n")
    with pytest.raises(FileNotFoundError, match=r"copies gone\.txt"):
        BuildInputs.of(tmp_path / "Dockerfile", root=tmp_path)


def test_the_runtime_image_is_named_by_its_inputs_and_the_debian_recipe() -> None:
    image = planned(Path("/cache"))
    inputs = BuildInputs.of(DOCKERFILE, recipe=base.recipe())
    assert image.ref == f"{REPOSITORY}:{inputs.digest()[:16]}"
    assert image.archive == Path(f"/cache/runtime-cpu-{image.tag}.tar")
    assert {"images/requirements/runtime-cpu.txt", "pyproject.toml"} <= set(inputs.files)
    assert any(f.startswith("training-runtime/modelfleet_train/") for f in inputs.files)
    assert any(f.startswith("serving-runtime/modelfleet_serve/") for f in inputs.files)


def test_a_build_the_disk_cannot_hold_is_refused_before_it_starts(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with (tmp_path / "runtime-cpu-0123456789abcdef.tar").open("wb") as archive:
        archive.truncate(free)  # sparse: its size, not its blocks, sets what a build needs
    with pytest.raises(ImageBuildFailed, match=r"GiB free under .*: free some disk"):
        _require_space(tmp_path)
    (tmp_path / "runtime-cpu-0123456789abcdef.tar").unlink()
    with (tmp_path / "runtime-cpu-0123456789abcdef.tar").open("wb") as archive:
        archive.truncate(1024)
    _require_space(tmp_path)


def test_a_step_that_fills_the_disk_says_so(tmp_path: Path) -> None:
    buildah = Buildah(store=tmp_path / "store", logs=tmp_path / "logs")
    failing = ["sh", "-c", "echo 'write /x/1: no space left on device'; exit 1"]
    with pytest.raises(ImageBuildFailed, match=r"the disk is full \(.* GiB free under .*store now\)"):
        buildah.step("commit", failing)
    assert buildah.env["TMPDIR"] == str(tmp_path / "store" / "tmp")


class _StandInBuildah:
    """Stands in for buildah's store: the tags it holds, what was removed."""

    def __init__(self, tags: list[str]) -> None:
        self.tags = tags
        self.pruned = False

    def images(self, repository: str) -> list[str]:
        return [t for t in self.tags if t.startswith(repository + ":")]

    def run(self, *args: str) -> str:
        assert args[0] == "rmi"
        self.tags.remove(args[1])
        return ""

    def prune_dangling(self) -> None:
        self.pruned = True


def test_stand_in_store_before_a_build_other_archives_go_and_the_layers_stay(tmp_path: Path) -> None:
    for age, tag in enumerate(["0000000000000old", "000000000000last"]):
        for suffix in (".tar", ".json"):
            path = tmp_path / f"runtime-cpu-{tag}{suffix}"
            path.write_text("x")
            os.utime(path, (1000 + age, 1000 + age))
    buildah = _StandInBuildah([f"{REPOSITORY}:0000000000000old", f"{REPOSITORY}:000000000000last"])
    image = RuntimeImage(f"{REPOSITORY}:00000000000new", tmp_path / "runtime-cpu-00000000000new.tar")

    _remove_older(buildah, image, tmp_path, before_build=True)  # type: ignore[arg-type]

    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime-cpu-000000000000last.json"]
    assert buildah.tags == [f"{REPOSITORY}:000000000000last"]  # its layers: this build's cache
    assert not buildah.pruned

    image.archive.write_text("x")
    image.build_record.write_text("x")
    _remove_older(buildah, image, tmp_path)  # type: ignore[arg-type]
    assert buildah.pruned and buildah.tags == [f"{REPOSITORY}:000000000000last"]  # KEEP = 2
