"""Count one user's API requests in the API server's audit log (JSON lines, ``audit.k8s.io/v1``).

A request is counted once, by its ``auditID``, when its ``requestReceivedTimestamp`` falls in the window:
a watch is logged when its response starts and again when it ends, every other request when it ends.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass
class Requests:
    total: int = 0
    by_verb: Counter[str] = field(default_factory=Counter)
    by_resource: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "by_verb": dict(self.by_verb.most_common()),
            "by_resource": dict(self.by_resource.most_common()),
        }


def end_offset(log: Path) -> int:
    """Where the log ends now: read from here to see only what comes after."""
    return log.stat().st_size if log.exists() else 0


def _events(log: Path, user: str, offset: int) -> Iterator[dict[str, Any]]:
    """``user``'s audit events from byte ``offset`` on (a line still being written is skipped)."""
    if not log.exists():
        return
    with log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            try:
                event: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if event.get("user", {}).get("username") == user:
                yield event


def count(log: Path, user: str, start: float, end: float, offset: int = 0) -> Requests:
    """Requests of ``user`` received in [start, end) (wall-clock seconds), reading from byte ``offset``."""
    seen: set[str] = set()
    found = Requests()
    for event in _events(log, user, offset):
        received = datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
        if event["auditID"] in seen or not start <= received < end:
            continue
        seen.add(event["auditID"])
        found.total += 1
        found.by_verb[event.get("verb", "?")] += 1
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", event.get("requestURI", "?"))
        if ref.get("subresource"):
            resource += f"/{ref['subresource']}"
        found.by_resource[resource] += 1
    return found


def watched(log: Path, user: str, offset: int = 0) -> set[str]:
    """Resources ``user`` has opened a watch on since byte ``offset``."""
    return {
        (event.get("objectRef") or {}).get("resource", "")
        for event in _events(log, user, offset)
        if event.get("verb") == "watch"
    }
