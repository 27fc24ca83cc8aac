"""How the tools run the operator on this machine (tests, demo, benchmarks): its command line and its
liveness probe."""

from __future__ import annotations

import sys
import urllib.request

START_TIMEOUT = 180.0
"""Seconds for a starting operator's /healthz to answer: it imports kopf, both Kubernetes clients and
pydantic first, which took over a minute when the two cores were shared by a load average of 30; a
crash fails at once (the callers watch the process), whatever this says."""


def command(*scope: str, health_port: int, metrics_port: int) -> list[str]:
    """``python -m modelfleet_operator --standalone SCOPE...`` with its two ports; ``scope`` is
    ``--all-namespaces`` or ``--namespace NS``."""
    return [
        sys.executable, "-m", "modelfleet_operator", "--standalone", *scope,
        "--health-port", str(health_port), "--metrics-port", str(metrics_port),
    ]  # fmt: skip


def healthy(health_port: int) -> bool:
    """kopf's ``/healthz`` answers 200 (False while nothing listens yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
