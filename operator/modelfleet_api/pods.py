"""What a user may add to the pods the operator makes (``spec.podTemplate``), and what stays the operator's.

A constrained overlay rather than a whole pod template: the operator's own parts of a pod (its
containers with their command, ports, probes and resources, the runtime-config and cache volumes, the
selector labels, the placement on the chosen VM size, the security context) are what make it run the
workload, so a user adds to them and never replaces them. What may be added: labels and annotations,
tolerations, node affinity, image pull secrets, volumes (with mounts into the operator's containers)
and sidecars (run as Kubernetes native sidecars, so a Job's pod still completes).

Every rule is a CEL rule of the CRD, with a message naming the field, so a mistake is refused at apply;
the names each kind keeps for itself (``ReservedPodParts``) are declared here, next to the rules that
refuse them, and a unit test checks that the operator's pods use no other. The operator merges the
overlay into each pod it builds (``modelfleet_operator.common.pod_overlay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field
from pydantic.config import JsonDict

from modelfleet_api import contract
from modelfleet_api.base import ApiModel, CelRule, TextFormat
from modelfleet_api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENV_SCHEMA_EXTRA,
    EnvVar,
    ObjectName,
    PositiveQuantity,
)

_SEGMENT = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
QUALIFIED_NAME = TextFormat(
    rf"^({DNS_SUBDOMAIN_PATTERN.strip('^$')}/)?{_SEGMENT}$",
    "must be a qualified name: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, "
    "'-', '_' and '.', starting and ending with a letter or digit (e.g. example.com/team)",
)
"""A label, annotation, taint or node-label key."""
LABEL_VALUE_PATTERN = rf"^({_SEGMENT})?$"
DNS_LABEL = TextFormat(
    DNS_LABEL_PATTERN,
    "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
)
ABSOLUTE_PATH = TextFormat(
    r"^/[^:]*$", "must be an absolute path in the container (starting with '/', no ':')"
)
_PATH_SEGMENT = r"([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+|\.)"
"""A path segment other than `..`."""
RELATIVE_PATH = TextFormat(
    rf"^{_PATH_SEGMENT}(/{_PATH_SEGMENT})*$",
    "must be a relative path (not starting with '/') without '..' segments",
)
LIST_BY_NAME: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}

RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "modelfleet.io/")
"""Label keys the operator sets on its pods (selectors, the owner and track); a user's label may not
take them over."""
RESERVED_ANNOTATION_PREFIXES = ("modelfleet.io/", "kubectl.kubernetes.io/default-container")
"""Annotations the operator sets (the config hash that rolls the pods, the default container)."""
PLACEMENT_NODE_LABELS = {
    "node.kubernetes.io/instance-type": "resources.instanceType",
    "kubernetes.azure.com/agentpool": "resources.nodePool",
    "kubernetes.azure.com/scalesetpriority": "resources.spot",
}
"""Node labels the operator places pods by, and the field that says where; node affinity on them
would contradict that field."""


def _cel_list(values: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


# ---- metadata ---------------------------------------------------------------------------------------
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]
AnnotationValue = Annotated[str, Field(max_length=8192)]


def _key_rules(field: str, reserved: tuple[str, ...], what: str) -> tuple[CelRule, ...]:
    taken = " || ".join(f"k.startsWith('{prefix}')" for prefix in reserved)
    return (
        CelRule(
            rule=f'!has(self.{field}) || self.{field}.all(k, k.matches(r"{QUALIFIED_NAME.pattern}"))',
            message=f"{field}: every key {QUALIFIED_NAME.message}",
            field_path=f".{field}",
        ),
        CelRule(
            rule=f"!has(self.{field}) || self.{field}.all(k, !({taken}))",
            message=f"{field}: keys starting with {' or '.join(reserved)} are {what}",
            field_path=f".{field}",
            reason="FieldValueForbidden",
        ),
    )


class PodMetadata(ApiModel):
    """Labels and annotations added to the pods (and only the pods, not the objects that make them)."""

    labels: dict[str, LabelValue] = Field(default_factory=dict, max_length=16)
    """Extra pod labels, e.g. for a cost-allocation tool or a network policy."""

    annotations: dict[str, AnnotationValue] = Field(default_factory=dict, max_length=16)
    """Extra pod annotations, e.g. `prometheus.io/*` or a service mesh's settings."""

    cel_rules = (
        *_key_rules("labels", RESERVED_LABEL_PREFIXES, "the operator's (selectors, owner, track)"),
        *_key_rules("annotations", RESERVED_ANNOTATION_PREFIXES, "the operator's"),
    )


# ---- scheduling -------------------------------------------------------------------------------------
class TolerationOperator(StrEnum):
    EQUAL = "Equal"
    EXISTS = "Exists"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """Lets the pods onto nodes with a matching taint (added to the operator's own tolerations)."""

    key: Annotated[str, QUALIFIED_NAME.field(316), QUALIFIED_NAME.check()] | None = None
    """Taint key; unset with `operator: Exists`: every taint."""

    operator: TolerationOperator = TolerationOperator.EQUAL
    """`Equal` (the taint's value must be `value`) or `Exists` (any value)."""

    value: LabelValue | None = None
    """Taint value, with `operator: Equal`."""

    effect: TaintEffect | None = None
    """`NoSchedule`, `PreferNoSchedule` or `NoExecute`; unset: every effect."""

    toleration_seconds: int | None = Field(default=None, ge=0, le=31_536_000)
    """With `effect: NoExecute`: how long the pod stays on a node after the taint appears."""

    cel_rules = (
        CelRule(
            rule="self.operator != 'Exists' || !has(self.value)",
            message="value must be unset with operator Exists",
            field_path=".value",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="has(self.key) || self.operator == 'Exists'",
            message="a toleration without key tolerates every taint and needs operator Exists",
            field_path=".operator",
        ),
        CelRule(
            rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            message="tolerationSeconds applies to effect NoExecute only",
            field_path=".tolerationSeconds",
            reason="FieldValueForbidden",
        ),
    )


class NodeSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


class NodeSelectorRequirement(ApiModel):
    """A node label `key` compared with `values` by `operator`."""

    key: Annotated[str, QUALIFIED_NAME.field(316), QUALIFIED_NAME.check()]
    """Node label key."""

    operator: NodeSelectorOperator
    """`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`."""

    values: list[LabelValue] = Field(default_factory=list, max_length=16)
    """Values: at least one for `In`/`NotIn`, none for `Exists`/`DoesNotExist`, one integer for `Gt`/`Lt`."""

    cel_rules = (
        CelRule(
            rule=f"!(self.key in {_cel_list(list(PLACEMENT_NODE_LABELS))})",
            message="node labels "
            + ", ".join(f"{label} ({field})" for label, field in PLACEMENT_NODE_LABELS.items())
            + " place the pods already: set the field named instead",
            field_path=".key",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
            message="values needs at least one value with operator In or NotIn",
            field_path=".values",
            reason="FieldValueRequired",
        ),
        CelRule(
            rule="!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || "
            "size(self.values) == 0",
            message="values must be empty with operator Exists or DoesNotExist",
            field_path=".values",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!(self.operator in ['Gt', 'Lt']) || "
            "(has(self.values) && size(self.values) == 1 && self.values[0].matches(r'^-?[0-9]+$'))",
            message="values must be one integer with operator Gt or Lt",
            field_path=".values",
        ),
    )


class NodeSelectorTerm(ApiModel):
    """Node label requirements that must all hold."""

    match_expressions: list[NodeSelectorRequirement] = Field(min_length=1, max_length=8)
    """Requirements on node labels (all of them)."""


class NodeSelector(ApiModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, max_length=4)
    """Terms, any of which a node must match (each with the operator's own placement: a spot pod must
    still land on spot nodes)."""


class PreferredSchedulingTerm(ApiModel):
    weight: int = Field(ge=1, le=100)
    """How much a node matching `preference` is preferred (1-100)."""

    preference: NodeSelectorTerm
    """The node label requirements."""


class NodeAffinity(ApiModel):
    """Which nodes the pods may or should run on, besides the VM size and pool of `resources`."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    """Nodes must match one of these terms."""

    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list, max_length=4
    )
    """Nodes matching these terms are preferred."""


class Affinity(ApiModel):
    """Node affinity only: the operator places the pods on the VM size and pool of `resources`."""

    node_affinity: NodeAffinity | None = None
    """Node affinity, merged with the operator's (the spot requirement of `resources.spot` joins every
    required term)."""


# ---- volumes ----------------------------------------------------------------------------------------
FileMode = Annotated[int, Field(ge=0, le=0o777)]


class KeyToPath(ApiModel):
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key of the Secret or ConfigMap."""

    path: Annotated[str, RELATIVE_PATH.field(253), RELATIVE_PATH.check()]
    """File it is written to, relative to the mount path."""

    mode: FileMode | None = None
    """File mode bits (0-0777, e.g. 0400 = 256)."""


class ConfigMapVolume(ApiModel):
    name: ObjectName
    """ConfigMap in the resource's namespace."""

    items: list[KeyToPath] = Field(default_factory=list, max_length=16)
    """Keys to project, and where; unset: every key, as a file named after it."""

    default_mode: FileMode | None = None
    """Mode bits of the files (0-0777)."""

    optional: bool = False
    """Start the pod even when the ConfigMap is missing."""


class SecretVolume(ApiModel):
    secret_name: ObjectName
    """Secret in the resource's namespace."""

    items: list[KeyToPath] = Field(default_factory=list, max_length=16)
    """Keys to project, and where; unset: every key, as a file named after it."""

    default_mode: FileMode | None = None
    """Mode bits of the files (0-0777)."""

    optional: bool = False
    """Start the pod even when the Secret is missing."""


class PersistentVolumeClaimVolume(ApiModel):
    claim_name: ObjectName
    """PersistentVolumeClaim in the resource's namespace."""

    read_only: bool = False
    """Mount it read-only."""


class StorageMedium(StrEnum):
    MEMORY = "Memory"


class EmptyDirVolume(ApiModel):
    medium: StorageMedium | None = None
    """`Memory` for a tmpfs (counted against the container's memory); unset: the node's disk."""

    size_limit: PositiveQuantity | None = None
    """Most space it may use (a quantity such as 10Gi)."""


class ObjectReference(ApiModel):
    name: ObjectName
    """Object in the resource's namespace."""


class CsiVolume(ApiModel):
    """A CSI driver's inline volume, e.g. the Azure Key Vault provider of the Secrets Store CSI driver
    (`secrets-store.csi.k8s.io`) or Azure Blob (`blob.csi.azure.com`)."""

    driver: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_SUBDOMAIN_PATTERN)]
    """CSI driver name."""

    read_only: bool = False
    """Mount it read-only."""

    fs_type: str | None = Field(default=None, max_length=32)
    """File system type, when the driver asks for one."""

    volume_attributes: dict[str, Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=dict, max_length=16
    )
    """The driver's own settings (e.g. `secretProviderClass`)."""

    node_publish_secret_ref: ObjectReference | None = None
    """Secret the driver reads credentials from."""


VOLUME_SOURCES = ("configMap", "secret", "persistentVolumeClaim", "emptyDir", "csi")


class Volume(ApiModel):
    """A volume added to the pods: exactly one source. Host paths and other sources are not offered:
    they tie a pod to a node or bypass the namespace's objects."""

    name: Annotated[str, DNS_LABEL.field(63), DNS_LABEL.check()]
    """Volume name, used by `volumeMounts` and the sidecars' mounts."""

    config_map: ConfigMapVolume | None = None
    """The keys of a ConfigMap, as files."""

    secret: SecretVolume | None = None
    """The keys of a Secret, as files (e.g. a CA bundle or a client certificate)."""

    persistent_volume_claim: PersistentVolumeClaimVolume | None = None
    """A PersistentVolumeClaim."""

    empty_dir: EmptyDirVolume | None = None
    """A scratch directory that lives as long as the pod (shared with sidecars)."""

    csi: CsiVolume | None = None
    """An inline CSI volume."""

    cel_rules = (
        CelRule(
            rule=" + ".join(f"(has(self.{source}) ? 1 : 0)" for source in VOLUME_SOURCES) + " == 1",
            message=f"a volume takes exactly one source: {', '.join(VOLUME_SOURCES)}",
            reason="FieldValueRequired",
        ),
    )


class VolumeMount(ApiModel):
    name: Annotated[str, DNS_LABEL.field(63), DNS_LABEL.check()]
    """A volume of `podTemplate.spec.volumes`."""

    mount_path: Annotated[str, ABSOLUTE_PATH.field(253), ABSOLUTE_PATH.check()]
    """Where it appears in the container."""

    sub_path: Annotated[str, RELATIVE_PATH.field(253), RELATIVE_PATH.check()] | None = None
    """A file or directory of the volume to mount instead of its root."""

    read_only: bool = False
    """Mount it read-only."""


# ---- sidecars ---------------------------------------------------------------------------------------
class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"


PORT_NAME = TextFormat(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "must be an IANA service name: at most 15 lowercase letters, digits and '-'",
)


class ContainerPort(ApiModel):
    name: Annotated[str, PORT_NAME.field(15), PORT_NAME.check()] | None = None
    """Port name."""

    container_port: int = Field(ge=1, le=65535)
    """Port the sidecar listens on."""

    protocol: Protocol = Protocol.TCP
    """`TCP` or `UDP`."""


class ResourceAmounts(ApiModel):
    cpu: PositiveQuantity | None = None
    """CPU (a quantity such as 100m)."""

    memory: PositiveQuantity | None = None
    """Memory (a quantity such as 128Mi)."""

    ephemeral_storage: PositiveQuantity | None = Field(default=None, alias="ephemeral-storage")
    """Local disk (a quantity such as 1Gi)."""


class SidecarResources(ApiModel):
    """CPU, memory and disk of a sidecar; GPUs are the workload's (`resources`)."""

    requests: ResourceAmounts = Field(default_factory=ResourceAmounts)
    """What the scheduler reserves for it."""

    limits: ResourceAmounts = Field(default_factory=ResourceAmounts)
    """The most it may use."""


class Sidecar(ApiModel):
    """A container beside the workload, started before it and stopped after it (a Kubernetes native
    sidecar: an init container that keeps running, so a training or benchmark pod still completes).
    It runs with the pod's security context (non-root) and no privileges."""

    name: Annotated[str, DNS_LABEL.field(63), DNS_LABEL.check()]
    """Container name."""

    image: str = Field(min_length=1, max_length=1024)
    """Image."""

    image_pull_policy: PullPolicy | None = None
    """`Always`, `IfNotPresent` or `Never`; unset: Kubernetes' default for the tag."""

    command: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=32)
    """Entrypoint; unset: the image's."""

    args: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=32)
    """Arguments; unset: the image's."""

    env: list[EnvVar] = Field(default_factory=list, max_length=16, json_schema_extra=ENV_SCHEMA_EXTRA)
    """Environment variables (literal or from a Secret or ConfigMap key)."""

    ports: list[ContainerPort] = Field(default_factory=list, max_length=8)
    """Ports it listens on."""

    resources: SidecarResources = Field(default_factory=SidecarResources)
    """CPU, memory and disk."""

    volume_mounts: list[VolumeMount] = Field(default_factory=list, max_length=8)
    """Mounts of `podTemplate.spec.volumes`."""


# ---- the overlay ------------------------------------------------------------------------------------
class PodSpecOverlay(ApiModel):
    """What is added to the pods' spec."""

    tolerations: list[Toleration] = Field(default_factory=list, max_length=16)
    """Added to the operator's tolerations (the GPU and spot taints of `resources`)."""

    affinity: Affinity | None = None
    """Node affinity (merged with the spot requirement of `resources.spot`)."""

    image_pull_secrets: list[ObjectReference] = Field(
        default_factory=list, max_length=8, json_schema_extra=LIST_BY_NAME
    )
    """Secrets (type `kubernetes.io/dockerconfigjson`) to pull the images with, besides the operator's
    default ones."""

    volumes: list[Volume] = Field(default_factory=list, max_length=8, json_schema_extra=LIST_BY_NAME)
    """Volumes added to the pods."""

    volume_mounts: list[VolumeMount] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["mountPath"]},
    )
    """Mounts of `volumes` into every container the operator makes."""

    sidecars: list[Sidecar] = Field(default_factory=list, max_length=4, json_schema_extra=LIST_BY_NAME)
    """Containers that run beside the workload for the pod's whole life."""

    cel_rules = (
        CelRule(
            rule="!has(self.volumeMounts) || self.volumeMounts.all(m, "
            "has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
            message="volumeMounts: each name must be a volume of podTemplate.spec.volumes",
            field_path=".volumeMounts",
        ),
        CelRule(
            rule="!has(self.sidecars) || self.sidecars.all(s, !has(s.volumeMounts) || s.volumeMounts.all(m, "
            "has(self.volumes) && self.volumes.exists(v, v.name == m.name)))",
            message="sidecars: each volumeMounts name must be a volume of podTemplate.spec.volumes",
            field_path=".sidecars",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class ReservedPodParts:
    """The parts of one kind's pods that are the operator's: a user's overlay may not reuse them."""

    kind: str
    containers: frozenset[str]
    volumes: frozenset[str]
    volume_prefix: str | None
    """The operator numbers its claims' volumes ``<prefix>N`` (None: it has no such volumes)."""
    mount_paths: frozenset[str]
    """Paths the operator mounts (a user's mount may be neither one of them nor below one)."""
    ports: frozenset[int]
    """Ports the workload listens on in the pod."""

    def rules(self) -> tuple[CelRule, ...]:
        """The CEL rules on a ``PodTemplate`` (fields under ``.spec``) refusing these parts."""
        volumes = ", ".join(sorted(self.volumes))
        numbered = ""
        if self.volume_prefix is not None:
            volumes += f" and {self.volume_prefix}N"
            numbered = f" && !v.name.startsWith('{self.volume_prefix}')"
        paths = _cel_list(self.mount_paths)
        ports = ", ".join(str(p) for p in sorted(self.ports))
        port_rule = CelRule(
            rule="!has(self.spec.sidecars) || self.spec.sidecars.all(s, !has(s.ports) || "
            f"s.ports.all(p, !(p.containerPort in [{ports}])))",
            message=f"spec.sidecars: ports {ports} are the {self.kind} workload's: a sidecar must listen "
            "elsewhere",
            field_path=".spec.sidecars",
            reason="FieldValueForbidden",
        )
        return (
            CelRule(
                rule="!has(self.spec.volumes) || self.spec.volumes.all(v, "
                f"!(v.name in {_cel_list(self.volumes)}){numbered})",
                message=f"spec.volumes: {volumes} are the {self.kind} pods' own volume names: choose another",
                field_path=".spec.volumes",
                reason="FieldValueForbidden",
            ),
            CelRule(
                rule="!has(self.spec.volumeMounts) || self.spec.volumeMounts.all(m, "
                f"!{paths}.exists(p, m.mountPath == p || m.mountPath.startsWith(p + '/')))",
                message=f"spec.volumeMounts: {', '.join(sorted(self.mount_paths))} (and below) are where the "
                f"operator mounts the {self.kind} pods' own volumes: choose another mountPath",
                field_path=".spec.volumeMounts",
                reason="FieldValueForbidden",
            ),
            CelRule(
                rule="!has(self.spec.sidecars) || self.spec.sidecars.all(s, "
                f"!(s.name in {_cel_list(self.containers)}))",
                message=f"spec.sidecars: {', '.join(sorted(self.containers))} are the {self.kind} pods' own "
                "container names: choose another",
                field_path=".spec.sidecars",
                reason="FieldValueForbidden",
            ),
            *((port_rule,) if self.ports else ()),
        )


SERVING_POD = ReservedPodParts(
    kind="ModelDeployment",
    containers=frozenset({"server", "model-download"}),
    volumes=frozenset({"config", "model-cache", "dshm"}),
    volume_prefix="model-pvc-",
    mount_paths=frozenset(
        {contract.CONFIG_DIR, contract.MODEL_CACHE_DIR, contract.SHM_MOUNT, contract.PVC_MOUNT_ROOT}
    ),
    ports=frozenset(
        {contract.SERVE_PORT, contract.METRICS_PORT, contract.TRITON_GRPC_PORT, contract.TRITON_METRICS_PORT}
    ),
)
TRAINING_POD = ReservedPodParts(
    kind="TrainingJob",
    containers=frozenset({"trainer"}),
    volumes=frozenset({"config", "dshm", "cache"}),
    volume_prefix="pvc-",
    mount_paths=frozenset(
        {contract.CONFIG_DIR, contract.SHM_MOUNT, contract.RUNTIME_CACHE_DIR, contract.PVC_MOUNT_ROOT}
    ),
    ports=frozenset({contract.MASTER_PORT, contract.METRICS_PORT}),
)
BENCHMARK_POD = ReservedPodParts(
    kind="BenchmarkSweep",
    containers=frozenset({"bench"}),
    volumes=frozenset({"config", "results"}),
    volume_prefix="model-pvc-",
    mount_paths=frozenset({contract.CONFIG_DIR, contract.BENCH_RESULTS_DIR, contract.PVC_MOUNT_ROOT}),
    ports=frozenset(),
)


class PodTemplate(ApiModel):
    """Additions to the pods the operator makes (see each field); the operator's own parts win."""

    reserved: ClassVar[ReservedPodParts]

    metadata: PodMetadata = Field(default_factory=PodMetadata)
    """Labels and annotations."""

    spec: PodSpecOverlay = Field(default_factory=PodSpecOverlay)
    """Tolerations, node affinity, image pull secrets, volumes and mounts, sidecars."""


class ServingPodTemplate(PodTemplate):
    """Additions to the serving pods of both tracks (the operator's containers: `server` and the
    `model-download` init container)."""

    reserved = SERVING_POD
    cel_rules = SERVING_POD.rules()


class TrainingPodTemplate(PodTemplate):
    """Additions to every worker pod (the operator's container: `trainer`)."""

    reserved = TRAINING_POD
    cel_rules = TRAINING_POD.rules()


class BenchmarkPodTemplate(PodTemplate):
    """Additions to every point's benchmark pod (the operator's container: `bench`)."""

    reserved = BENCHMARK_POD
    cel_rules = BENCHMARK_POD.rules()
