"""Deterministic names of a BenchmarkSweep's children, so every reconcile finds what an earlier one made.

An expanded deployment is ``<sweep>-<target>-<index>`` (the API's promise); its name is also its
Service's, so it must be a DNS label: a name longer than 63 characters keeps its head and gets a
short hash of the whole name instead of the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DNS_LABEL_MAX = 63
_HASH_LENGTH = 8


def fit_label(name: str) -> str:
    """``name`` when it is a valid DNS label length, else a unique shortened form of it."""
    if len(name) <= DNS_LABEL_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    head = name[: DNS_LABEL_MAX - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


@dataclass(frozen=True)
class ChildNames:
    sweep: str
    namespace: str

    def deployment(self, target: str, index: int) -> str:
        """The ModelDeployment expanded from template target ``target`` (combination ``index``)."""
        return fit_label(f"{self.sweep}-{target}-{index}")

    def point_job(self, point: int) -> str:
        return fit_label(f"{self.sweep}-point-{point}")

    def point_config_map(self, point: int) -> str:
        return fit_label(f"{self.sweep}-point-{point}-config")

    @property
    def results_config_map(self) -> str:
        return fit_label(f"{self.sweep}-results")
