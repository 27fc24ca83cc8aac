variable "name" {
  type        = string
  description = "Prefix of the monitoring resources' names."
}

variable "location" {
  type        = string
  description = "Azure region of the monitoring resources."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group that holds the monitoring resources."
}

variable "kubernetes_cluster_id" {
  type        = string
  description = "Resource ID of the AKS cluster whose metrics are collected."
}

variable "grafana_enabled" {
  type        = bool
  description = "Create an Azure Managed Grafana wired to the Prometheus workspace."
  default     = true
}

variable "grafana_major_version" {
  type        = string
  description = "Major version of Azure Managed Grafana."
  default     = "12"
  validation {
    condition     = contains(["12", "13"], var.grafana_major_version)
    error_message = "grafana_major_version must be 12 or 13 (the versions azurerm 5.x accepts)."
  }
}

variable "grafana_admin_object_ids" {
  type        = list(string)
  description = "Entra ID users or groups given Grafana Admin (known before apply, e.g. your team's group)."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags on every monitoring resource."
  default     = {}
}
