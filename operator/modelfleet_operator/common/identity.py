"""Who the runtime pods are to Azure: their ServiceAccount, the workload-identity label and the
storage account of ``az://`` URIs (pure).

AKS workload identity federates one user-assigned identity with exact ``namespace/serviceaccount``
pairs (the Terraform variable ``runtime_service_accounts``), and its webhook only mutates pods
labelled ``azure.workload.identity/use: "true"``. So a pod reaches blob storage only when it runs as
such a named ServiceAccount *and* carries the label; the two always go together here. The account
comes from the resource's ``spec.serviceAccountName``, else the operator's
``MODELFLEET_RUNTIME_SERVICE_ACCOUNT``; with neither, the pods keep the controller's own default (a
per-job ServiceAccount for training workers, the namespace's ``default`` otherwise) and no label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api import contract

from modelfleet_operator.config import OperatorConfig


@dataclass(frozen=True, kw_only=True)
class RuntimeIdentity:
    """What the operator settings and one resource's spec say about its runtime pods' identity."""

    service_account: str | None = None
    """The workload-identity ServiceAccount the pods run as; None: the controller's default."""
    storage_account: str | None = None
    """``AZURE_STORAGE_ACCOUNT`` of the pods; None: not set."""
    from_spec: bool = False
    """The account is the resource's ``spec.serviceAccountName`` (else the operator's setting)."""

    @classmethod
    def of(cls, config: OperatorConfig, spec_service_account: str | None) -> RuntimeIdentity:
        """Precedence: the resource's ``serviceAccountName`` > the operator's runtime service account."""
        return cls(
            service_account=spec_service_account or config.runtime_service_account,
            storage_account=config.storage_account,
            from_spec=spec_service_account is not None,
        )

    def pod_labels(self) -> dict[str, str]:
        """The workload-identity label, when the pods run as a runtime ServiceAccount."""
        return {c.WORKLOAD_IDENTITY_LABEL: "true"} if self.service_account else {}

    def pod_spec(self, default_service_account: str | None = None) -> dict[str, Any]:
        """``serviceAccountName``: the runtime one, else ``default_service_account`` (None: leave it out,
        so the pods run as the namespace's ``default``)."""
        name = self.service_account or default_service_account
        return {"serviceAccountName": name} if name else {}

    def missing_message(self, namespace: str) -> str:
        """What a user reads when the runtime ServiceAccount does not exist: which one, and the fix."""
        chosen_by = (
            "spec.serviceAccountName"
            if self.from_spec
            else "the operator's runtime service account, MODELFLEET_RUNTIME_SERVICE_ACCOUNT"
        )
        return (
            f"ServiceAccount {self.service_account} ({chosen_by}) does not exist in namespace {namespace}, "
            "so no pod can be created. Create it and annotate it with the runtime identity's client id "
            "(azure.workload.identity/client-id, see docs/operations.md section 4), or set "
            "spec.serviceAccountName to an account that exists; the operator retries on its own."
        )

    def env(self) -> list[dict[str, Any]]:
        """``AZURE_STORAGE_ACCOUNT`` for ``az://CONTAINER/PATH`` URIs, when the operator knows the account."""
        if not self.storage_account:
            return []
        return [{"name": contract.ENV_STORAGE_ACCOUNT, "value": self.storage_account}]


NO_IDENTITY = RuntimeIdentity()
"""No runtime ServiceAccount, no storage account: the pods as they were before workload identity."""
