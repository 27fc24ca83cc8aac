# A user-assigned identity that Kubernetes service accounts can act as: each federated credential
# trusts tokens the cluster's OIDC issuer signs for one namespace/service-account pair.
resource "azurerm_user_assigned_identity" "this" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "this" {
  for_each = { for sa in var.service_accounts : "${sa.namespace}-${sa.name}" => sa }

  name                      = each.key
  user_assigned_identity_id = azurerm_user_assigned_identity.this.id
  issuer                    = var.oidc_issuer_url
  subject                   = "system:serviceaccount:${each.value.namespace}:${each.value.name}"
  audience                  = ["api://AzureADTokenExchange"]
}
