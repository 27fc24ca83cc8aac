output "id" {
  description = "Resource ID of the storage account."
  value       = azurerm_storage_account.this.id
}

output "name" {
  description = "Name of the storage account."
  value       = azurerm_storage_account.this.name
}

output "blob_endpoint" {
  description = "Blob endpoint, e.g. https://NAME.blob.core.windows.net/."
  value       = azurerm_storage_account.this.primary_blob_endpoint
}
