"""What an image is built from, and the hash that names it.

The inputs are the Dockerfile and every file its ``COPY`` instructions take from the build context
(read from the Dockerfile itself, so a new ``COPY`` is hashed without anyone remembering to add it),
plus a recipe string for what the files do not show (the Debian base). The build runs on a context
holding exactly these files, so the hash and the image cannot disagree.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIPPED_NAMES = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def copy_sources(dockerfile: Path) -> list[str]:
    """Context paths of the Dockerfile's ``COPY`` instructions (not ``COPY --from``), in order."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources.extend(a for a in args[:-1] if a not in sources)
    return sources


def _listed_by_git(root: Path, paths: list[str]) -> list[str] | None:
    """Files under ``paths`` that git tracks or would track (untracked, not ignored); None outside git."""
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    out = subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            *paths,
        ],
        capture_output=True,
        check=True,
    ).stdout
    return sorted({p for p in out.decode().split("\0") if p and (root / p).is_file()})


def _walked(root: Path, paths: list[str]) -> list[str]:
    files: set[str] = set()
    for path in paths:
        top = root / path
        if top.is_file():
            files.add(path)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_NAMES]
            for name in filenames:
                if not name.endswith(".pyc"):
                    files.add(str((Path(dirpath) / name).relative_to(root)))
    return sorted(files)


@dataclass(frozen=True)
class BuildInputs:
    """The files an image is built from (relative to ``root``) and their hash."""

    root: Path
    dockerfile: Path
    files: tuple[str, ...]
    recipe: str

    @classmethod
    def of(cls, dockerfile: Path, recipe: str = "", root: Path = REPO) -> BuildInputs:
        sources = copy_sources(dockerfile)
        missing = [s for s in sources if not (root / s).exists()]
        if missing:
            raise FileNotFoundError(f"{dockerfile.name} copies {', '.join(missing)}, which {root} lacks")
        files = _listed_by_git(root, sources)
        return cls(root, dockerfile, tuple(_walked(root, sources) if files is None else files), recipe)

    def digest(self) -> str:
        """sha256 over the Dockerfile, each file's path, mode and content, and the recipe."""
        h = hashlib.sha256()
        h.update(b"dockerfile\0" + self.dockerfile.read_bytes())
        for rel in self.files:
            path = self.root / rel
            executable = b"x" if os.access(path, os.X_OK) else b"-"
            h.update(
                b"\0file\0" + rel.encode() + b"\0" + executable + hashlib.sha256(path.read_bytes()).digest()
            )
        h.update(b"\0recipe\0" + self.recipe.encode())
        return h.hexdigest()

    def tag(self) -> str:
        """The first 16 hex digits of the digest: the image tag."""
        return self.digest()[:16]

    def write_context(self, directory: Path) -> BuildInputs:
        """Copy the Dockerfile and the hashed files into a build context; returns the inputs as copied,
        whose digest the caller compares with this one (a file edited meanwhile shows as a mismatch)."""
        dockerfile = directory / self.dockerfile.relative_to(self.root)
        for rel, target in [(str(self.dockerfile.relative_to(self.root)), dockerfile)] + [
            (rel, directory / rel) for rel in self.files
        ]:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.root / rel, target)
        return BuildInputs(directory, dockerfile, self.files, self.recipe)
