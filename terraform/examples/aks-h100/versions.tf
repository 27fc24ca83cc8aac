terraform {
  required_version = ">= 1.9"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.2"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.2"
    }
  }
}

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
  # The storage account has shared keys disabled, so data-plane calls use Entra ID.
  storage_use_azuread = true
}

# With local accounts disabled the helm provider signs in like kubectl does, through kubelogin
# (https://azure.github.io/kubelogin) with the Azure CLI's login.
provider "helm" {
  kubernetes = {
    host                   = module.aks.host
    cluster_ca_certificate = module.aks.cluster_ca_certificate
    client_certificate     = var.local_account_disabled ? null : module.aks.client_certificate
    client_key             = var.local_account_disabled ? null : module.aks.client_key
    exec = var.local_account_disabled ? {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      # 6dae42f8-4368-4678-94ff-3960e28e3630 is the fixed application ID of the AKS AAD server.
      args = ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    } : null
  }
}
