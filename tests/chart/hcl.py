"""Reading Terraform files with python-hcl2 into plain values.

python-hcl2 keeps HCL's quotes on string literals and block labels (``'"Spot"'``), wraps expressions
in ``${...}`` and adds ``__comments__`` / ``__is_block__`` markers; these helpers strip all that so
tests compare against what a reader of the .tf file sees.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


@cache  # parsing with lark is slow (~0.1 s a file); tests only read the result
def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return unquote(hcl2.load(f))


def blocks(path: Path, kind: str) -> dict[str, Any]:
    """`variable`/`output`/`module` blocks of a file by name, or `resource` blocks by "type.name"."""
    found: dict[str, Any] = {}
    for entry in load(path).get(kind, []):
        for label, body in entry.items():
            if kind in ("resource", "data"):
                for name, resource in body.items():
                    found[f"{label}.{name}"] = resource
            else:
                found[label] = body
    return found


def tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)
