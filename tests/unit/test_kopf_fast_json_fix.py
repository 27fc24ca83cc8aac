"""kopf_fixes.fast_json: kopf's watch streams are parsed by orjson, into the same values as the standard
library's json, and kopf of another shape is left alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kopf._cogs.clients import api
from modelfleet_operator import kopf_fixes
from modelfleet_operator.kopf_fixes import fast_json

pytestmark = pytest.mark.unit

EVENT = {
    "type": "MODIFIED",
    "object": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tiny-0", "labels": {"a": "ü"}, "generation": 3},
        "spec": {"nodeName": "n1", "priority": 0, "overhead": None},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "x": 1.5},
    },
}


@pytest.fixture(autouse=True)
def fixed() -> None:
    assert kopf_fixes.install()
    assert kopf_fixes.install(), "a second install is a no-op"


class Lines:
    """An aiohttp response's content as kopf reads it: chunks of bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_chunked(self, size: int) -> Any:
        async def chunks() -> Any:
            for start in range(0, len(self.data), 7):  # lines split across chunks
                yield self.data[start : start + 7]

        return chunks()


def test_kopfs_watch_lines_parse_into_the_same_values_as_with_json() -> None:
    data = b"".join(json.dumps(EVENT, ensure_ascii=ensure).encode() + b"\n" for ensure in (True, False))

    async def parsed() -> list[Any]:
        return [api.json.loads(line.decode("utf-8")) async for line in api.iter_jsonlines(Lines(data))]

    assert api.json is fast_json.FAST
    assert asyncio.run(parsed()) == [EVENT, EVENT]
    with pytest.raises(ValueError):
        api.json.loads("{not json")


def test_kopf_changed_shape_leaves_kopf_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    other = object()
    monkeypatch.setattr(api, "json", other)
    assert not fast_json.install()
    assert api.json is other
