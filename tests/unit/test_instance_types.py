"""The VM-size catalogue: Azure's published figures, and what the API and the pods make of a CPU size."""

from __future__ import annotations

import re

import pytest
from modelfleet_api import instance_types as it
from modelfleet_api.common import NodePlacement
from modelfleet_api.modeldeployment import ServingResources
from modelfleet_api.trainingjob import TrainingResources
from modelfleet_operator.common import placement
from pydantic import ValidationError

pytestmark = pytest.mark.unit

# (GPUs, GPU memory GiB, vCPUs, memory GiB, InfiniBand): Azure's size pages.
PUBLISHED = {
    "Standard_NC40adis_H100_v5": (1, 94, 40, 320, False),
    "Standard_NC80adis_H100_v5": (2, 94, 80, 640, False),
    "Standard_ND96isr_H100_v5": (8, 80, 96, 1900, True),
    "Standard_ND96isr_H200_v5": (8, 141, 96, 1850, True),
    "Standard_ND96asr_v4": (8, 40, 96, 900, True),
    "Standard_ND96amsr_A100_v4": (8, 80, 96, 1900, True),
    "Standard_NC24ads_A100_v4": (1, 80, 24, 220, False),
    "Standard_NC48ads_A100_v4": (2, 80, 48, 440, False),
    "Standard_NC96ads_A100_v4": (4, 80, 96, 880, False),
    "Standard_D2s_v5": (0, 0, 2, 8, False),
    "Standard_D4s_v5": (0, 0, 4, 16, False),
    "Standard_D8s_v5": (0, 0, 8, 32, False),
    "Standard_D16s_v5": (0, 0, 16, 64, False),
    "Standard_D32s_v5": (0, 0, 32, 128, False),
    "Standard_D48s_v5": (0, 0, 48, 192, False),
    "Standard_D64s_v5": (0, 0, 64, 256, False),
    "Standard_D96s_v5": (0, 0, 96, 384, False),
}


@pytest.mark.parametrize("size", sorted(PUBLISHED))
def test_catalogue_holds_azures_figures(size: str) -> None:
    entry = it.info(size)
    assert (entry.gpus, entry.gpu_memory_gib, entry.vcpu, entry.memory_gib, entry.infiniband) == PUBLISHED[
        size
    ]
    assert entry.is_gpu == (entry.gpus > 0) == (entry.gpu_model is not None)


def test_catalogue_is_exactly_the_published_sizes() -> None:
    assert {t.value for t in it.InstanceType} == set(PUBLISHED)


def test_infiniband_is_the_nd_sizes() -> None:
    assert {t.value for t, e in it.CATALOGUE.items() if e.infiniband} == {
        s for s in PUBLISHED if s.startswith("Standard_ND")
    }


def test_every_size_can_be_spot_azure_excludes_only_b_series_and_promo() -> None:
    assert all(entry.spot for entry in it.CATALOGUE.values())
    assert not any(re.match(r"Standard_B\d", t.value) or "Promo" in t.value for t in it.InstanceType)


def test_pool_names_are_unique_aks_linux_pool_names() -> None:
    pools = [entry.pool for entry in it.CATALOGUE.values()]
    assert len(set(pools)) == len(pools)
    assert all(re.fullmatch(r"[a-z][a-z0-9]{0,11}", pool) for pool in pools)


def test_instance_type_field_doc_names_every_size() -> None:
    doc = NodePlacement.model_fields["instance_type"].description or ""
    assert all(f"`{t.value}`" in doc for t in it.InstanceType)


def test_cpu_and_gpu_lists_feed_the_cel_rules() -> None:
    assert it.cpu_instance_types_cel().startswith("['Standard_D2s_v5', ")
    assert "Standard_D8s_v5" not in it.gpus_by_instance_type_cel()
    assert "'Standard_ND96isr_H200_v5': 8" in it.gpus_by_instance_type_cel()


@pytest.mark.parametrize(
    ("model", "resources", "error"),
    [
        (TrainingResources, {"instanceType": "Standard_D8s_v5"}, "gpusPerNode must be 0"),
        (
            TrainingResources,
            {"instanceType": "Standard_ND96asr_v4", "gpusPerNode": 0},
            "gpusPerNode must be 1 to 8",
        ),
        (
            ServingResources,
            {"instanceType": "Standard_NC24ads_A100_v4", "gpusPerReplica": 2},
            "must be 1 to 1",
        ),
        (
            ServingResources,
            {"instanceType": "Standard_D2s_v5", "gpusPerReplica": 1},
            "gpusPerReplica must be 0",
        ),
    ],
)
def test_gpu_counts_must_fit_the_size(
    model: type[NodePlacement], resources: dict[str, object], error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        model.model_validate(resources)


def test_a_cpu_pod_asks_for_most_of_the_vm_and_no_gpu() -> None:
    cpu = ServingResources.model_validate({"instanceType": "Standard_D16s_v5", "gpusPerReplica": 0})
    assert placement.resources(cpu, 0) == {
        "requests": {"cpu": "14", "memory": "57Gi"},
        "limits": {"cpu": "14", "memory": "57Gi"},
    }
    assert placement.pod_placement(cpu) == {"nodeSelector": {it.NODE_LABEL_INSTANCE_TYPE: "Standard_D16s_v5"}}
    tiny = ServingResources.model_validate({"instanceType": "Standard_D2s_v5", "gpusPerReplica": 0})
    assert placement.resources(tiny, 0)["requests"]["cpu"] == "1"


def test_a_gpu_pod_on_an_a100_size_requests_its_gpus() -> None:
    a100 = ServingResources.model_validate({"instanceType": "Standard_NC96ads_A100_v4", "gpusPerReplica": 2})
    assert placement.resources(a100, 2)["requests"] == {"cpu": "43", "memory": "396Gi", "nvidia.com/gpu": "2"}
    assert placement.pod_placement(a100)["tolerations"] == [
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    ]


def test_cpu_replicas_take_a_node_each_and_a_created_cpu_pool_is_not_gpu_tainted() -> None:
    from modelfleet_operator.capacity import arm
    from modelfleet_operator.capacity.plan import Want
    from modelfleet_operator.serving.policies.capacity import nodes_for_replicas

    cpu = ServingResources.model_validate({"instanceType": "Standard_D8s_v5", "gpusPerReplica": 0})
    assert nodes_for_replicas(cpu, 3) == 3
    assert arm.new_pool(Want(instance_type=it.InstanceType.D8S_V5), "d8sv5", 2).node_taints == []
    gpu_pool = arm.new_pool(Want(instance_type=it.InstanceType.ND96ISR_H200_V5), "nd96h200", 2)
    assert gpu_pool.node_taints == ["sku=gpu:NoSchedule"]
