# The AKS cluster and its system pool. GPU pools are separate resources (module gpu-node-pool) so a
# pool can be added, resized or removed without touching the cluster resource.
resource "azurerm_kubernetes_cluster" "this" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  dns_prefix          = var.name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = var.sku_tier

  # Pods get Azure tokens by exchanging their service-account token (no secrets in the cluster).
  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  local_account_disabled    = var.local_account_disabled

  default_node_pool {
    name                 = "system"
    vm_size              = var.system_pool.vm_size
    auto_scaling_enabled = true
    min_count            = var.system_pool.min_count
    max_count            = var.system_pool.max_count
    zones                = var.system_pool.zones
    os_disk_size_gb      = var.system_pool.os_disk_size_gb
    vnet_subnet_id       = var.vnet_subnet_id
    # Not tainted CriticalAddonsOnly: the operator and CPU-only helpers (benchmark clients) run here.
    only_critical_addons_enabled = false
    upgrade_settings {
      max_surge = "10%"
    }
  }

  identity {
    type = "SystemAssigned"
  }

  # Node pools are the ones declared here and in module gpu-node-pool (each with its own taints,
  # spot settings and scale-from-zero autoscaler), not node auto-provisioning's: "Manual". azurerm 5.x
  # requires the block.
  node_provisioning_profile {
    mode = "Manual"
  }

  dynamic "azure_active_directory_role_based_access_control" {
    for_each = var.local_account_disabled ? [1] : []
    content {
      azure_rbac_enabled     = true
      admin_group_object_ids = var.admin_group_object_ids
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
  }

  # The KEDA add-on: ModelDeployments scale serving replicas on queue depth, down to zero.
  workload_autoscaler_profile {
    keda_enabled = true
  }

  # GPU nodes are expensive: give the autoscaler a short idle window and let it drain nodes whose
  # pods use emptyDir (model caches live there).
  auto_scaler_profile {
    expander                      = "least-waste"
    scale_down_unneeded           = var.scale_down_unneeded
    skip_nodes_with_local_storage = false
    # H100 nodes install drivers and pull multi-GiB images before they are Ready.
    max_node_provisioning_time = "25m"
  }

  storage_profile {
    blob_driver_enabled = true
  }

  # Azure Monitor managed Prometheus scrapes the cluster when monitoring is on (see module monitoring).
  dynamic "monitor_metrics" {
    for_each = var.managed_prometheus_enabled ? [1] : []
    content {}
  }

  tags = var.tags

  lifecycle {
    # The autoscaler owns the system pool's current size.
    ignore_changes = [default_node_pool[0].node_count]
  }
}
