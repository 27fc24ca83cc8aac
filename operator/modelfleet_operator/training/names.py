"""Deterministic names of a TrainingJob's children, so every reconcile finds what an earlier one made.

The worker Job and the headless Service share the TrainingJob's name: an Indexed Job's pods get the
hostnames ``<job>-<index>`` and, with ``subdomain`` set to the Service, the stable DNS names
``<job>-<index>.<service>.<namespace>.svc`` that torchrun's rendezvous points at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChildNames:
    training_job: str
    namespace: str

    @property
    def job(self) -> str:
        return self.training_job

    @property
    def service(self) -> str:
        return self.training_job

    @property
    def config_map(self) -> str:
        return f"{self.training_job}-config"

    @property
    def progress_config_map(self) -> str:
        return f"{self.training_job}-progress"

    @property
    def service_account(self) -> str:
        """Also the name of the Role and RoleBinding that let rank 0 publish progress."""
        return f"{self.training_job}-worker"

    @property
    def master_addr(self) -> str:
        """Stable DNS name of worker 0 (torchrun's rendezvous host)."""
        return f"{self.job}-0.{self.service}.{self.namespace}.svc"
