locals {
  spot = var.priority == "Spot"
  # Every GPU pool carries sku=gpu:NoSchedule so only pods that ask for GPUs land there. AKS adds the
  # spot taint and label to Spot pools itself; they are declared too so Terraform sees no drift.
  taints = concat(
    ["sku=gpu:NoSchedule"],
    local.spot ? ["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"] : [],
  )
  labels = merge(
    var.node_labels,
    local.spot ? { "kubernetes.azure.com/scalesetpriority" = "spot" } : {},
  )
}

# One GPU user pool (H100, H200 or A100), autoscaled from zero: it costs nothing until a TrainingJob
# or ModelDeployment asks for its GPUs.
resource "azurerm_kubernetes_cluster_node_pool" "this" {
  name                  = var.name
  kubernetes_cluster_id = var.kubernetes_cluster_id
  vm_size               = var.vm_size
  mode                  = "User"
  os_type               = "Linux"
  os_sku                = "Ubuntu"
  zones                 = var.zones
  vnet_subnet_id        = var.vnet_subnet_id
  os_disk_size_gb       = var.os_disk_size_gb
  os_disk_type          = var.os_disk_type

  auto_scaling_enabled = true
  min_count            = 0
  max_count            = var.max_count
  node_count           = 0

  priority        = var.priority
  eviction_policy = local.spot ? "Delete" : null
  spot_max_price  = local.spot ? var.spot_max_price : null

  node_taints = local.taints
  node_labels = local.labels

  # Spot pools do not support surge upgrades.
  dynamic "upgrade_settings" {
    for_each = local.spot ? [] : [1]
    content {
      max_surge = "1"
    }
  }

  tags = var.tags

  lifecycle {
    # The cluster autoscaler owns the current node count.
    ignore_changes = [node_count]
  }
}
