"""Small parts several resources share: conditions, environment variables, node placement."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, model_validator
from pydantic.config import JsonDict

from modelfleet_api.base import ApiModel, CelRule, TextFormat
from modelfleet_api.instance_types import (
    CATALOGUE,
    InstanceType,
    cpu_instance_types_cel,
    gpu_instance_types,
    gpus_by_instance_type_cel,
)

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
"""A Kubernetes resource quantity (`4`, `500m`, `64Gi`), the apimachinery regex."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1123 label (names that become part of object names)."""

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A DNS-1123 subdomain (names of most objects, e.g. ServiceAccounts), at most 253 characters."""
DNS_SUBDOMAIN_MAX = 253

DNS_1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1035 label: what a Service name must be (a DNS label that starts with a letter)."""

OBJECT_NAME = TextFormat(
    DNS_SUBDOMAIN_PATTERN,
    "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a "
    "letter or digit",
)
"""The name of a Secret, PersistentVolumeClaim, ServiceAccount, PriorityClass (DNS-1123 subdomains)."""
SERVICE_NAME = TextFormat(
    DNS_1035_LABEL_PATTERN,
    "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a "
    "letter or digit (no dots)",
)
LABEL_NAME = TextFormat(
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    "must be an object name usable as a label value: at most 63 lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit",
)
HTTP_URL = TextFormat(
    r"^https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/\S*)?$",
    "must be an http:// or https:// URL (scheme://host[:port][/path], no spaces)",
)
MLFLOW_URI = TextFormat(
    r"^(https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/\S*)?|databricks(://\S+)?|"
    r"azureml://\S+|(postgresql|mysql|mssql)(\+[a-z0-9]+)?://\S+|(file|sqlite):///\S+)$",
    "must be an MLflow tracking URI with a scheme: an http:// or https:// server, databricks[://PROFILE], "
    "azureml://..., a database (postgresql://, mysql://, mssql://) or a local store (file:///PATH, "
    "sqlite:///PATH; not in a resource: it would be lost with the pod); no spaces",
)
LOCAL_MLFLOW_STORE = ("file:", "sqlite:")
"""MLflow stores inside the pod: fine for a runtime run by hand, lost with the pod in a resource."""


def no_local_mlflow_store(path: str) -> CelRule:
    """A rule that the MLflow URI at ``path`` (a wire path under the rule's object) outlives the pod."""
    guard = " && ".join(f"!self.{path}.startsWith('{p}')" for p in LOCAL_MLFLOW_STORE)
    parent = path.rsplit(".", 1)[0]
    return CelRule(
        rule=f"!has(self.{parent}) || !has(self.{path}) || ({guard})",
        message=f"{path} is a store inside the pod (file: or sqlite:), lost with the pod: use a tracking "
        "server or a database",
        field_path=f".{path}",
    )


ServiceAccountName = Annotated[str, OBJECT_NAME.field(DNS_SUBDOMAIN_MAX), OBJECT_NAME.check()]
"""A ServiceAccount in the resource's namespace that its runtime pods run as (``spec.serviceAccountName``)."""
ObjectName = Annotated[str, OBJECT_NAME.field(DNS_SUBDOMAIN_MAX), OBJECT_NAME.check()]
"""A Secret, PersistentVolumeClaim or PriorityClass name."""
ModelDeploymentName = Annotated[str, SERVICE_NAME.field(56), SERVICE_NAME.check()]
"""The name of a ModelDeployment (a DNS-1035 label: its Services carry it; 56 characters at most, see
``modeldeployment.MAX_NAME_LENGTH``)."""
LabelName = Annotated[str, LABEL_NAME.field(63), LABEL_NAME.check()]
"""An object name that is also carried as a label value (e.g. a Kueue LocalQueue)."""
HttpUrl = Annotated[str, HTTP_URL.field(1024), HTTP_URL.check()]
MlflowUri = Annotated[str, MLFLOW_URI.field(1024), MLFLOW_URI.check()]

_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[eE][0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
)
POSITIVE_QUANTITY_MESSAGE = "must be a positive quantity such as 32, 500m, 64Gi or 1.5"
_SUFFIX_VALUE = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    **{
        suffix: Decimal(1024) ** (power + 1)
        for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))
    },
}


def quantity_value(value: str) -> Decimal | None:
    """The value of a non-negative Kubernetes quantity (``64Gi`` is 68719476736), None when it is not one."""
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return Decimal(match["number"]) * Decimal(10) ** int(suffix[1:])
    return Decimal(match["number"]) * _SUFFIX_VALUE[suffix]


def _positive_quantity(value: str) -> str:
    match = _QUANTITY.match(value)
    if match is None or float(match["number"]) <= 0:
        raise ValueError(POSITIVE_QUANTITY_MESSAGE)
    return value


PositiveQuantity = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
                    "message": POSITIVE_QUANTITY_MESSAGE,
                    "reason": "FieldValueInvalid",
                }
            ]
        },
    ),
    AfterValidator(_positive_quantity),
]
"""A Kubernetes resource quantity greater than zero (`32`, `500m`, `256Gi`): the API server's own
quantity parser decides (``isQuantity``), the models check the same grammar without sign."""

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


KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""A key of a Secret or ConfigMap."""


class KeyRef(ApiModel):
    """One key of a Secret or ConfigMap in the resource's namespace."""

    name: ObjectName
    """Secret or ConfigMap in the resource's namespace."""

    key: str = Field(min_length=1, max_length=253, pattern=KEY_PATTERN)
    """Key in it."""

    optional: bool = False
    """Start the pod even when the object or the key is missing (the variable is then unset); by
    default the pod waits, and the kubelet reports `CreateContainerConfigError` naming what is missing."""

    def to_k8s(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, **({"optional": True} if self.optional else {})}


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from (read by the kubelet when the pod starts)."""

    secret_key_ref: KeyRef | None = None
    """A key of a Secret: the value never appears in the resource."""

    config_map_key_ref: KeyRef | None = None
    """A key of a ConfigMap."""

    cel_rules = (
        CelRule(
            rule="has(self.secretKeyRef) != has(self.configMapKeyRef)",
            message="valueFrom takes exactly one of secretKeyRef and configMapKeyRef",
            reason="FieldValueRequired",
        ),
    )


class EnvVar(ApiModel):
    """An environment variable: a literal value, or one the kubelet reads from a Secret or ConfigMap."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Environment variable name."""
    value: str | None = Field(default=None, max_length=32768)
    """Literal value; for a secret, use `valueFrom.secretKeyRef` instead."""
    value_from: EnvVarSource | None = None
    """Read the value from a key of a Secret (`secretKeyRef`) or ConfigMap (`configMapKeyRef`)."""

    cel_rules = (
        CelRule(
            rule="!(has(self.value) && has(self.valueFrom))",
            message="set value or valueFrom, not both",
            field_path=".valueFrom",
            reason="FieldValueForbidden",
        ),
    )

    def to_k8s(self) -> dict[str, Any]:
        """The container's ``env`` entry."""
        source = self.value_from
        if source is None:
            return {"name": self.name, "value": self.value or ""}
        if source.secret_key_ref is not None:
            return {"name": self.name, "valueFrom": {"secretKeyRef": source.secret_key_ref.to_k8s()}}
        assert source.config_map_key_ref is not None  # the CRD requires exactly one
        return {"name": self.name, "valueFrom": {"configMapKeyRef": source.config_map_key_ref.to_k8s()}}


def env_list(env: list[EnvVar]) -> list[dict[str, Any]]:
    """A spec's ``env`` as container ``env`` entries."""
    return [variable.to_k8s() for variable in env]


class SecretKeyRef(ApiModel):
    """One key of a Secret in the resource's namespace, handed to the pods as an environment variable."""

    name: ObjectName
    """Secret in the resource's namespace."""

    key: str = Field(default="api-key", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key in the Secret holding the API key."""

    def env_var(self, name: str) -> dict[str, Any]:
        """A container environment variable `name` whose value the kubelet reads from this key."""
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


HUB_TOKEN_ENV = "HF_TOKEN"
"""The variable huggingface_hub and the engines read a Hugging Face access token from."""


class HubTokenSecret(ApiModel):
    """A Hugging Face access token in a Secret of the resource's namespace."""

    name: ObjectName
    """Secret in the resource's namespace."""

    key: str = Field(default="token", min_length=1, max_length=253, pattern=KEY_PATTERN)
    """Key in the Secret holding the token."""

    def env_var(self) -> dict[str, Any]:
        """``HF_TOKEN``, read by the kubelet from the Secret."""
        return {"name": HUB_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


SET: JsonDict = {"x-kubernetes-list-type": "set"}
"""A list whose items must be unique (the API server names the duplicate)."""


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


def hub_token_env_rule(model: str, guard: str = "") -> CelRule:
    """A rule that ``env`` does not set ``HF_TOKEN`` when the model at wire path ``model`` (under the
    spec) names a ``tokenSecret``, which sets it; ``guard`` is CEL that holds when that model is unset."""
    return CelRule(
        rule=f"{guard}!has(self.{model}.tokenSecret) || !has(self.env) || "
        f"!self.env.exists(e, e.name == '{HUB_TOKEN_ENV}')",
        message=f"env {HUB_TOKEN_ENV} is set from {model}.tokenSecret: drop one of them",
        field_path=".env",
        reason="FieldValueForbidden",
    )


class NodePlacement(ApiModel):
    """Which AKS VM size and pool the pods run on."""

    instance_type: InstanceType = InstanceType.NC40ADIS_H100_V5
    """AKS VM size; pods are pinned to nodes of this size. GPU sizes (GPUs per VM): H100
    `Standard_NC40adis_H100_v5` (1), `Standard_NC80adis_H100_v5` (2), `Standard_ND96isr_H100_v5` (8);
    H200 `Standard_ND96isr_H200_v5` (8); A100 `Standard_NC24ads_A100_v4` (1), `Standard_NC48ads_A100_v4`
    (2), `Standard_NC96ads_A100_v4` (4), `Standard_ND96asr_v4` (8 x 40 GB), `Standard_ND96amsr_A100_v4`
    (8 x 80 GB); the ND sizes have InfiniBand. CPU sizes (no GPUs: set the GPU count to 0):
    `Standard_D2s_v5`, `Standard_D4s_v5`, `Standard_D8s_v5`, `Standard_D16s_v5`, `Standard_D32s_v5`,
    `Standard_D48s_v5`, `Standard_D64s_v5`, `Standard_D96s_v5`."""

    node_pool: str | None = Field(default=None, max_length=12, pattern="^[a-z][a-z0-9]{0,11}$")
    """AKS node pool to pin pods to (`kubernetes.azure.com/agentpool`), when several pools share a VM size."""

    spot: bool = False
    """Run on spot VMs: tolerate the spot taint and require `kubernetes.azure.com/scalesetpriority=spot`."""

    cpu: PositiveQuantity | None = None
    """CPU request and limit per pod (a quantity like `32`); unset: most of the VM's vCPUs."""

    memory: PositiveQuantity | None = None
    """Memory request and limit per pod (a quantity like `256Gi`); unset: most of the VM's memory."""

    gpu_count_field: ClassVar[str | None] = None
    """A subclass's GPUs-per-pod field: checked against the VM size here as its ``gpu_count_rules`` do
    in the API server, so the operator refuses what an older CRD may have let through."""

    @property
    def on_cpu(self) -> bool:
        """The pods go to a CPU VM size: no GPU request, toleration or GPU settings."""
        return not CATALOGUE[self.instance_type].is_gpu

    @model_validator(mode="after")
    def _gpu_count_fits_the_vm(self) -> Self:
        if self.gpu_count_field is None:
            return self
        gpus = getattr(self, self.gpu_count_field)
        field = type(self).model_fields[self.gpu_count_field].alias or self.gpu_count_field
        vm = CATALOGUE[self.instance_type]
        if self.on_cpu and gpus != 0:
            raise ValueError(f"{field} must be 0: instanceType is a CPU VM size (no GPUs)")
        if not self.on_cpu and not 1 <= gpus <= vm.gpus:
            raise ValueError(f"{field} must be 1 to {vm.gpus} on {self.instance_type.value}")
        return self


def on_cpu_cel(resources: str = "self") -> str:
    """CEL that holds when the placement at ``resources`` names a CPU VM size."""
    return f"{resources}.instanceType in {cpu_instance_types_cel()}"


def gpu_count_rules(gpu_field: str) -> tuple[CelRule, ...]:
    """Rules that a GPU count per pod is 0 on a CPU VM size and fits the VM on a GPU size."""
    sizes = ", ".join(f"{name.value}: {CATALOGUE[name].gpus}" for name in gpu_instance_types())
    return (
        CelRule(
            rule=f"!({on_cpu_cel()}) || self.{gpu_field} == 0",
            message=f"{gpu_field} must be 0: instanceType is a CPU VM size (no GPUs)",
            field_path=f".{gpu_field}",
        ),
        CelRule(
            rule=f"{on_cpu_cel()} || self.{gpu_field} >= 1",
            message=f"{gpu_field} must be at least 1 on a GPU instanceType (0 is for the CPU sizes)",
            field_path=f".{gpu_field}",
        ),
        CelRule(
            rule=f"{on_cpu_cel()} || self.{gpu_field} <= {gpus_by_instance_type_cel()}[self.instanceType]",
            message=f"{gpu_field} exceeds the GPUs of instanceType ({sizes})",
            field_path=f".{gpu_field}",
        ),
    )


def refused_on_cpu(allowed: str, field_path: str, message: str, resources: str = "self.resources") -> CelRule:
    """A rule refusing a GPU-only setting when the pods go to a CPU VM size; ``allowed`` is CEL that
    holds when the setting runs on a CPU."""
    return CelRule(
        rule=f"!({on_cpu_cel(resources)}) || ({allowed})",
        message=f"{message} (instanceType is a CPU VM size)",
        field_path=field_path,
    )
