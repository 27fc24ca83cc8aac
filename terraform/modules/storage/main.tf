# One storage account for what the runtimes read and write: datasets in, checkpoints and results out.
# Access is by Entra ID only (no shared keys), through the runtime's workload identity.
resource "azurerm_storage_account" "this" {
  name                            = var.name
  location                        = var.location
  resource_group_name             = var.resource_group_name
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = var.replication_type
  min_tls_version                 = "TLS1_2"
  shared_access_key_enabled       = false
  allow_nested_items_to_be_public = false
  # Hierarchical namespace makes checkpoint directory renames atomic and cheap.
  is_hns_enabled = true
  tags           = var.tags
}

resource "azurerm_storage_container" "this" {
  for_each = toset(var.containers)

  name                  = each.value
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_role_assignment" "blob_data_contributor" {
  # Keys are static names so the plan knows the set before the principals exist.
  for_each = var.data_contributors

  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
  principal_type       = "ServicePrincipal"
}
