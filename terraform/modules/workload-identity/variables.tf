variable "name" {
  type        = string
  description = "Name of the user-assigned identity."
}

variable "location" {
  type        = string
  description = "Azure region of the identity."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group that holds the identity."
}

variable "oidc_issuer_url" {
  type        = string
  description = "OIDC issuer URL of the AKS cluster."
}

variable "service_accounts" {
  type = list(object({
    namespace = string
    name      = string
  }))
  description = "Kubernetes service accounts allowed to use this identity (one federated credential each)."
  validation {
    condition     = length(var.service_accounts) > 0 && length(var.service_accounts) <= 20
    error_message = "Give 1 to 20 service accounts (Azure allows 20 federated credentials per identity)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags on the identity."
  default     = {}
}
