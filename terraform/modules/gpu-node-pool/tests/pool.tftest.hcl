# Plans the pool against a mocked azurerm provider and checks what AKS would be asked for.
mock_provider "azurerm" {}

variables {
  kubernetes_cluster_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
  name                  = "nc40h100"
  vm_size               = "Standard_NC40adis_H100_v5"
  max_count             = 4
}

run "on_demand_pool_scales_from_zero_behind_the_gpu_taint" {
  command = plan

  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.min_count == 0 && azurerm_kubernetes_cluster_node_pool.this.auto_scaling_enabled
    error_message = "GPU pools must autoscale from 0."
  }
  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.node_taints == tolist(["sku=gpu:NoSchedule"])
    error_message = "An on-demand GPU pool carries exactly the sku=gpu:NoSchedule taint."
  }
  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.priority == "Regular" && azurerm_kubernetes_cluster_node_pool.this.eviction_policy == null
    error_message = "An on-demand pool has Regular priority and no eviction policy."
  }
  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.upgrade_settings[0].max_surge == "1"
    error_message = "On-demand pools upgrade one surge node at a time."
  }
}

run "spot_pool_is_evicted_by_delete_and_tainted_like_aks_does" {
  command = plan

  variables {
    name     = "nc80h100"
    vm_size  = "Standard_NC80adis_H100_v5"
    priority = "Spot"
  }

  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.priority == "Spot" && azurerm_kubernetes_cluster_node_pool.this.eviction_policy == "Delete"
    error_message = "Spot pools are deleted on eviction so the autoscaler can go back to 0."
  }
  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.spot_max_price == -1
    error_message = "Spot pools pay up to the on-demand price by default."
  }
  assert {
    condition = azurerm_kubernetes_cluster_node_pool.this.node_taints == tolist([
      "sku=gpu:NoSchedule", "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
    ])
    error_message = "Spot pools carry the GPU taint and the spot taint AKS sets."
  }
  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.node_labels["kubernetes.azure.com/scalesetpriority"] == "spot"
    error_message = "Spot pools carry the spot label AKS sets."
  }
  assert {
    condition     = length(azurerm_kubernetes_cluster_node_pool.this.upgrade_settings) == 0
    error_message = "Spot pools do not support surge upgrades."
  }
}

run "plans_an_a100_pool" {
  command = plan

  variables {
    name    = "nc24a100"
    vm_size = "Standard_NC24ads_A100_v4"
  }

  assert {
    condition     = azurerm_kubernetes_cluster_node_pool.this.vm_size == "Standard_NC24ads_A100_v4"
    error_message = "Every GPU size of the catalogue makes a pool."
  }
}

run "rejects_a_cpu_vm_size" {
  command = plan

  variables {
    vm_size = "Standard_D8s_v5"
  }

  expect_failures = [var.vm_size]
}

run "rejects_a_pool_name_aks_refuses" {
  command = plan

  variables {
    name = "H100-Pool"
  }

  expect_failures = [var.name]
}
