"""Small parts several resources share: conditions, environment variables, node placement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field
from pydantic.config import JsonDict

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.instance_types import CATALOGUE, InstanceType, gpus_by_instance_type_cel

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
"""A Kubernetes resource quantity (`4`, `500m`, `64Gi`), the apimachinery regex."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1123 label (names that become part of object names)."""

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A DNS-1123 subdomain (names of most objects, e.g. ServiceAccounts), at most 253 characters."""
DNS_SUBDOMAIN_MAX = 253

ServiceAccountName = Annotated[
    str, Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN_PATTERN)
]
"""A ServiceAccount in the resource's namespace that its runtime pods run as (``spec.serviceAccountName``)."""

RESERVED_ENV_PREFIXES = ("PET_", "MODELFLEET_")
"""Variables the operator sets itself (see ``contract``); a user's env may not override them."""

MAX_ENV = 64


class Condition(ApiModel):
    """One observation of the resource's state, the Kubernetes ``metav1.Condition`` shape."""

    type: str = Field(max_length=316)
    """Condition type in CamelCase (see ``modelfleet_api.constants``), e.g. `Scheduled`, `Available`."""
    status: str = Field(pattern="^(True|False|Unknown)$")
    """`True`, `False` or `Unknown`."""
    reason: str = Field(max_length=1024)
    """CamelCase reason for the last transition, searchable in the docs."""
    message: str = Field(default="", max_length=32768)
    """What happened and what to do next, for humans."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` the condition was computed from."""


CONDITIONS_SCHEMA_EXTRA: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class EnvVar(ApiModel):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Environment variable name."""
    value: str = Field(default="", max_length=32768)
    """Value (literal; reference secrets through the engine's or runtime's own settings)."""


class SecretKeyRef(ApiModel):
    """One key of a Secret in the resource's namespace, handed to the pods as an environment variable."""

    name: str = Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN_PATTERN)
    """Secret in the resource's namespace."""

    key: str = Field(default="api-key", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key in the Secret holding the API key."""

    def env_var(self, name: str) -> dict[str, Any]:
        """A container environment variable `name` whose value the kubelet reads from this key."""
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


ENV_SCHEMA_EXTRA: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


def env_rules(path: str = ".env") -> tuple[CelRule, ...]:
    """Rules keeping a user's env list from overriding the operator-to-runtime contract."""
    prefixes = " || ".join(f"e.name.startsWith('{p}')" for p in RESERVED_ENV_PREFIXES)
    field = path.lstrip(".")
    return (
        CelRule(
            rule=f"!has(self.{field}) || self.{field}.all(e, !({prefixes}))",
            message=f"env names starting with {' or '.join(RESERVED_ENV_PREFIXES)} are set by the operator",
            field_path=path,
            reason="FieldValueForbidden",
        ),
    )


class NodePlacement(ApiModel):
    """Which AKS VM size and pool the pods run on."""

    instance_type: InstanceType = InstanceType.NC40ADIS_H100_V5
    """AKS VM size: `Standard_NC40adis_H100_v5` (1 H100), `Standard_NC80adis_H100_v5` (2) or
    `Standard_ND96isr_H100_v5` (8, InfiniBand). Pods are pinned to nodes of this size."""

    node_pool: str | None = Field(default=None, max_length=12, pattern="^[a-z][a-z0-9]{0,11}$")
    """AKS node pool to pin pods to (`kubernetes.azure.com/agentpool`), when several pools share a VM size."""

    spot: bool = False
    """Run on spot VMs: tolerate the spot taint and require `kubernetes.azure.com/scalesetpriority=spot`."""

    cpu: str | None = Field(default=None, max_length=64, pattern=QUANTITY_PATTERN)
    """CPU request and limit per pod (a quantity like `32`); unset: most of the VM's vCPUs."""

    memory: str | None = Field(default=None, max_length=64, pattern=QUANTITY_PATTERN)
    """Memory request and limit per pod (a quantity like `256Gi`); unset: most of the VM's memory."""


def gpus_fit_rule(gpu_field: str, noun: str) -> CelRule:
    """A rule that a GPU count per pod fits the chosen VM size."""
    sizes = ", ".join(f"{name.value}: {entry.gpus}" for name, entry in CATALOGUE.items())
    return CelRule(
        rule=f"self.{gpu_field} <= {gpus_by_instance_type_cel()}[self.instanceType]",
        message=f"{noun} exceeds the GPUs of instanceType ({sizes})",
        field_path=f".{gpu_field}",
    )
