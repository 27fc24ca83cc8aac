output "cluster_name" {
  description = "AKS cluster name (az aks get-credentials -n NAME -g RESOURCE_GROUP)."
  value       = module.aks.name
}

output "resource_group_name" {
  description = "Resource group of the cluster."
  value       = azurerm_resource_group.this.name
}

output "runtime_client_id" {
  description = "Client ID to annotate runtime service accounts with (azure.workload.identity/client-id)."
  value       = module.runtime_identity.client_id
}

output "storage_blob_endpoint" {
  description = "Blob endpoint holding the datasets, checkpoints and results containers."
  value       = module.storage.blob_endpoint
}

output "gpu_pools" {
  description = "Names of the GPU pools created."
  value       = [for pool in module.gpu_pools : pool.name]
}

output "grafana_endpoint" {
  description = "Grafana URL, or null without monitoring."
  value       = var.monitoring_enabled ? module.monitoring[0].grafana_endpoint : null
}
