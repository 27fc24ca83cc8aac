"""Fixes to kopf's reactor, installed before the operator runs: each replaces one private piece of
kopf, checks first that it still has the shape the fix was written for, and leaves kopf alone (with a
warning) otherwise. ``daemon_finalizer`` is not installed here: it changes a handler in the operator's
own registry, so ``common.handlers`` calls it where it registers each daemon."""

from __future__ import annotations

from modelfleet_operator.kopf_fixes import (
    fast_json,
    late_discovery,
    light_handlers,
    light_kinds,
    readiness,
    vanished_kinds,
)


def install() -> bool:
    """Install every fix once; False when one of them found kopf changed and was left out."""
    return all(
        [
            readiness.install(),
            vanished_kinds.install(),
            late_discovery.install(),
            light_handlers.install(),
            light_kinds.install(),
            fast_json.install(),
        ]
    )
