# Plans the cluster against a mocked azurerm provider and checks the features modelfleet relies on.
mock_provider "azurerm" {}

variables {
  name                = "modelfleet"
  location            = "eastus2"
  resource_group_name = "modelfleet-rg"
}

run "workload_identity_keda_and_an_untainted_system_pool" {
  command = plan

  assert {
    condition     = azurerm_kubernetes_cluster.this.oidc_issuer_enabled && azurerm_kubernetes_cluster.this.workload_identity_enabled
    error_message = "The operator and runtimes authenticate through workload identity."
  }
  assert {
    condition     = azurerm_kubernetes_cluster.this.workload_autoscaler_profile[0].keda_enabled
    error_message = "ModelDeployments scale through the KEDA add-on."
  }
  assert {
    condition     = !azurerm_kubernetes_cluster.this.default_node_pool[0].only_critical_addons_enabled
    error_message = "The operator runs on the system pool, which must stay untainted."
  }
  assert {
    condition     = length(azurerm_kubernetes_cluster.this.azure_active_directory_role_based_access_control) == 1
    error_message = "With local accounts disabled the cluster uses Entra ID and Azure RBAC."
  }
  assert {
    condition     = azurerm_kubernetes_cluster.this.node_provisioning_profile[0].mode == "Manual"
    error_message = "Node pools are the declared ones (GPU pools with their taints), not node auto-provisioning's."
  }
  assert {
    condition     = length(azurerm_kubernetes_cluster.this.monitor_metrics) == 0
    error_message = "The metrics add-on is off unless managed Prometheus is asked for."
  }
}

run "managed_prometheus_turns_on_the_metrics_add_on" {
  command = plan

  variables {
    managed_prometheus_enabled = true
  }

  assert {
    condition     = length(azurerm_kubernetes_cluster.this.monitor_metrics) == 1
    error_message = "managed_prometheus_enabled adds the monitor_metrics block."
  }
}

run "rejects_a_system_pool_that_can_reach_zero" {
  command = plan

  variables {
    system_pool = { min_count = 0 }
  }

  expect_failures = [var.system_pool]
}
