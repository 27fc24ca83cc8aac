output "id" {
  description = "Resource ID of the identity."
  value       = azurerm_user_assigned_identity.this.id
}

output "client_id" {
  description = "Client ID for the azure.workload.identity/client-id service-account annotation."
  value       = azurerm_user_assigned_identity.this.client_id
}

output "principal_id" {
  description = "Object ID of the identity's service principal, for role assignments."
  value       = azurerm_user_assigned_identity.this.principal_id
}
