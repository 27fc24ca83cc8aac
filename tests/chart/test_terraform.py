"""Terraform checks: formatting, the HCL's structure, and (when the providers were built into the
local mirror by hack/controlplane/build-terraform-providers.sh) `terraform validate` and the
modules' own `terraform test` plans against mocked providers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from modelfleet_api.instance_types import gpu_instance_types

from tests.chart.hcl import REPO, TERRAFORM, blocks, load, tf_files

pytestmark = pytest.mark.chart

TERRAFORM_BIN = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM_BIN is None, reason="terraform is not on PATH")
CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
MIRROR = CACHE / "terraform-plugins"
PROVIDERS = MIRROR / "registry.terraform.io" / "hashicorp"
POOL = "resource.azurerm_kubernetes_cluster_node_pool.this"


def mirror_has(*names: str) -> bool:
    return (MIRROR / "terraformrc").is_file() and all(
        any((PROVIDERS / name).glob("*/linux_amd64/terraform-provider-*")) for name in names
    )


def needs_providers(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        TERRAFORM_BIN is None or not mirror_has(*names),
        reason=f"terraform or the {'/'.join(names)} provider(s) missing from {MIRROR}: "
        f"run hack/controlplane/build-terraform-providers.sh {' '.join(names)}",
    )


def terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(MIRROR / "terraformrc"), "TF_IN_AUTOMATION": "1"}
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return subprocess.run(
        [TERRAFORM_BIN or "terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@needs_terraform
def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        [TERRAFORM_BIN or "terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tfvars = subprocess.run(
        [TERRAFORM_BIN or "terraform", "fmt", "-check", "-diff", str(REPO / "examples" / "aks.tfvars")],
        capture_output=True,
        text=True,
    )
    assert tfvars.returncode == 0, tfvars.stdout + tfvars.stderr


def test_every_variable_is_typed_and_described() -> None:
    missing = [
        f"{path.relative_to(REPO)}: {name} lacks {field}"
        for path in tf_files()
        for name, body in blocks(path, "variable").items()
        for field in ("type", "description")
        if not body.get(field)
    ]
    assert not missing, "\n".join(missing)
    assert len([1 for p in tf_files() for _ in blocks(p, "variable")]) > 40


def test_every_output_is_described() -> None:
    missing = [
        f"{path.relative_to(REPO)}: {name}"
        for path in tf_files()
        for name, body in blocks(path, "output").items()
        if not body.get("description")
    ]
    assert not missing, "\n".join(missing)


def test_gpu_pool_scales_from_zero_behind_the_gpu_and_spot_taints() -> None:
    module = TERRAFORM / "modules" / "gpu-node-pool" / "main.tf"
    pool = blocks(module, "resource")["azurerm_kubernetes_cluster_node_pool.this"]
    assert pool["mode"] == "User"
    assert pool["auto_scaling_enabled"] is True
    assert pool["min_count"] == 0
    assert pool["priority"] == "${var.priority}"
    assert pool["eviction_policy"] == '${local.spot ? "Delete" : null}'
    assert pool["node_taints"] == "${local.taints}"
    (local,) = load(module)["locals"]
    assert local["spot"] == '${var.priority == "Spot"}'
    assert '["sku=gpu:NoSchedule"]' in local["taints"]
    assert '["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]' in local["taints"]
    assert '{"kubernetes.azure.com/scalesetpriority" = "spot"}' in local["labels"]


def test_gpu_pool_sizes_are_the_catalogues_gpu_sizes() -> None:
    """One source: the module's vm_size validation lists exactly the catalogue's GPU sizes."""
    (validation,) = blocks(TERRAFORM / "modules" / "gpu-node-pool" / "variables.tf", "variable")["vm_size"][
        "validation"
    ]
    allowed = re.findall(r'"(Standard_[^"]+)"', validation["condition"])
    assert allowed == [t.value for t in gpu_instance_types()]
    assert all(size in validation["error_message"] for size in allowed)


def test_example_pools_are_the_design_pools() -> None:
    example = TERRAFORM / "examples" / "aks-h100"
    default_pools = blocks(example / "variables.tf", "variable")["gpu_pools"]["default"]
    recommended = load(REPO / "examples" / "aks.tfvars")["gpu_pools"]
    expected = {
        "nc40h100": ("Standard_NC40adis_H100_v5", False, True),
        "nc80h100": ("Standard_NC80adis_H100_v5", True, True),
        "nd96h100": ("Standard_ND96isr_H100_v5", False, False),
    }
    for pools in (default_pools, recommended):
        got = {
            name: (pool["vm_size"], pool.get("spot", False), pool.get("enabled", True))
            for name, pool in pools.items()
        }
        assert got == expected
    module_call = blocks(example / "main.tf", "module")["gpu_pools"]
    assert module_call["source"] == "../../modules/gpu-node-pool"
    assert module_call["priority"] == '${each.value.spot ? "Spot" : "Regular"}'


def test_cluster_has_workload_identity_keda_and_an_untainted_system_pool() -> None:
    cluster = blocks(TERRAFORM / "modules" / "aks" / "main.tf", "resource")["azurerm_kubernetes_cluster.this"]
    assert cluster["oidc_issuer_enabled"] is True
    assert cluster["workload_identity_enabled"] is True
    assert cluster["workload_autoscaler_profile"][0]["keda_enabled"] is True
    system = cluster["default_node_pool"][0]
    assert system["only_critical_addons_enabled"] is False
    assert "node_taints" not in system


def test_runtime_identity_can_write_blobs_and_trusts_only_named_service_accounts() -> None:
    storage = blocks(TERRAFORM / "modules" / "storage" / "main.tf", "resource")
    assert storage["azurerm_storage_account.this"]["shared_access_key_enabled"] is False
    role = storage["azurerm_role_assignment.blob_data_contributor"]
    assert role["role_definition_name"] == "Storage Blob Data Contributor"
    variables = blocks(TERRAFORM / "modules" / "storage" / "variables.tf", "variable")
    assert variables["containers"]["default"] == ["datasets", "checkpoints", "results"]
    credential = blocks(TERRAFORM / "modules" / "workload-identity" / "main.tf", "resource")[
        "azurerm_federated_identity_credential.this"
    ]
    assert credential["subject"] == "system:serviceaccount:${each.value.namespace}:${each.value.name}"
    assert credential["audience"] == ["api://AzureADTokenExchange"]
    example = blocks(TERRAFORM / "examples" / "aks-h100" / "main.tf", "module")
    assert example["storage"]["data_contributors"] == {"runtime": "${module.runtime_identity.principal_id}"}


def test_providers_are_pinned() -> None:
    (terraform_block,) = load(TERRAFORM / "examples" / "aks-h100" / "versions.tf")["terraform"]
    (providers,) = terraform_block["required_providers"]
    assert {name: spec["version"] for name, spec in providers.items()} == {
        "azurerm": "~> 5.2",
        "helm": "~> 3.2",
    }


def validates(tmp_path: Path, root: str) -> None:
    # A copy, so init's .terraform/ and lock file land in tmp_path, not in the repo.
    shutil.copytree(TERRAFORM, tmp_path / "terraform")
    workdir = tmp_path / "terraform" / root
    init = terraform("init", "-backend=false", "-input=false", "-no-color", cwd=workdir)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = terraform("validate", "-no-color", cwd=workdir)
    assert validate.returncode == 0, validate.stdout + validate.stderr


@needs_providers("azurerm", "helm")
def test_example_validates(tmp_path: Path) -> None:
    validates(tmp_path, "examples/aks-h100")


@needs_providers("helm")
def test_release_module_validates(tmp_path: Path) -> None:
    validates(tmp_path, "modules/modelfleet-release")


@needs_providers("azurerm")
@pytest.mark.parametrize("module", ["aks", "gpu-node-pool"])
def test_module_plans_pass_their_terraform_tests(module: str, tmp_path: Path) -> None:
    shutil.copytree(TERRAFORM / "modules" / module, tmp_path / module)
    init = terraform("init", "-backend=false", "-input=false", cwd=tmp_path / module)
    assert init.returncode == 0, init.stdout + init.stderr
    result = terraform("test", "-no-color", cwd=tmp_path / module)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
