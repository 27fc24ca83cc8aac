"""YAML text of JSON-like data, as cheaply as PyYAML allows (runtime config files)."""

from __future__ import annotations

import functools
import json
from typing import Any

import yaml

YAML_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""PyYAML's safe dumper on libyaml's C emitter when PyYAML was built with it (its wheels are), else the
pure-Python one: the same documents (the C emitter may fold a long quoted string at other places) at a
fraction of the CPU. The operator renders a runtime config on every pass of every object, to compare it
with the live ConfigMap."""

YAML_CACHE_SIZE = 1024
"""Documents ``dump_yaml`` remembers (a runtime config is a few kB, its key as much again)."""


def dump_yaml(data: Any) -> str:
    """``yaml.safe_dump(data, sort_keys=False)`` of JSON-like ``data``, on the C emitter when there is
    one, and remembered for the latest ``YAML_CACHE_SIZE`` documents: a controller renders the same
    runtime config on every pass of an object, and its JSON text (the cache key) costs a tenth of the
    dump (PyYAML's representer is Python even on the C emitter)."""
    return _yaml_of_json(json.dumps(data))


@functools.lru_cache(maxsize=YAML_CACHE_SIZE)
def _yaml_of_json(text: str) -> str:
    return yaml.dump(json.loads(text), Dumper=YAML_DUMPER, sort_keys=False)
