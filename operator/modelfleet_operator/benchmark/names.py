"""Deterministic names of a BenchmarkSweep's children, so every reconcile finds what an earlier one made.

An expanded deployment is ``<sweep>-<target>-<index>`` (the API's promise); its name is also its
Service's, so it must be a DNS label: a name longer than 63 characters keeps its head and gets a
short hash of the whole name instead of the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from modelfleet_api.modeldeployment import MAX_NAME_LENGTH as MODEL_DEPLOYMENT_NAME_MAX

DNS_LABEL_MAX = 63
DEPLOYMENT_NAME_MAX = MODEL_DEPLOYMENT_NAME_MAX
"""An expanded deployment is a ModelDeployment, whose CRD caps the name shorter (its tracks' children)."""
_HASH_LENGTH = 8


def fit_label(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """``name`` when it is at most ``limit`` (a DNS label's) characters, else a unique shortened form."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    head = name[: limit - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


@dataclass(frozen=True)
class ChildNames:
    sweep: str
    namespace: str

    def deployment(self, target: str, index: int) -> str:
        """The ModelDeployment expanded from template target ``target`` (combination ``index``)."""
        return fit_label(f"{self.sweep}-{target}-{index}", DEPLOYMENT_NAME_MAX)

    def point_job(self, point: int) -> str:
        return fit_label(f"{self.sweep}-point-{point}")

    def point_config_map(self, point: int) -> str:
        return fit_label(f"{self.sweep}-point-{point}-config")

    @property
    def results_config_map(self) -> str:
        return fit_label(f"{self.sweep}-results")

    @property
    def results_folder(self) -> str:
        """The sweep's folder below ``sinks.blobUri``: one per namespace and sweep, so sweeps never
        overwrite each other's files (a sweep recreated under the same name does)."""
        return f"{self.namespace}/{self.sweep}"
