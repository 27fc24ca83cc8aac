output "monitor_workspace_id" {
  description = "Resource ID of the Azure Monitor workspace (managed Prometheus)."
  value       = azurerm_monitor_workspace.this.id
}

output "prometheus_query_endpoint" {
  description = "PromQL endpoint of the workspace."
  value       = azurerm_monitor_workspace.this.query_endpoint
}

output "grafana_endpoint" {
  description = "URL of the Grafana instance, or null when Grafana is off."
  value       = var.grafana_enabled ? azurerm_dashboard_grafana.this[0].endpoint : null
}
