variable "name" {
  type        = string
  description = "Cluster name, also its DNS prefix."
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,52}[a-z0-9]$", var.name))
    error_message = "name must be 3-54 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
  }
}

variable "location" {
  type        = string
  description = "Azure region; it must offer the H100 VM sizes of the GPU pools."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group that holds the cluster."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version (e.g. \"1.33\"); null takes AKS's default. The chart needs 1.29 or newer."
  default     = null
}

variable "sku_tier" {
  type        = string
  description = "AKS control-plane tier: Free, Standard (uptime SLA) or Premium."
  default     = "Standard"
  validation {
    condition     = contains(["Free", "Standard", "Premium"], var.sku_tier)
    error_message = "sku_tier must be Free, Standard or Premium."
  }
}

variable "system_pool" {
  type = object({
    vm_size         = optional(string, "Standard_D8s_v5")
    min_count       = optional(number, 2)
    max_count       = optional(number, 5)
    zones           = optional(list(string), ["1", "2", "3"])
    os_disk_size_gb = optional(number, 128)
  })
  description = "System pool: runs AKS add-ons, the operator and CPU-only pods. Untainted."
  default     = {}
  validation {
    condition     = var.system_pool.min_count >= 1 && var.system_pool.max_count >= var.system_pool.min_count
    error_message = "system_pool needs min_count >= 1 and max_count >= min_count."
  }
}

variable "vnet_subnet_id" {
  type        = string
  description = "Subnet for the nodes; null lets AKS create its own virtual network."
  default     = null
}

variable "local_account_disabled" {
  type        = bool
  description = "Disable the cluster's local admin account and use Entra ID with Azure RBAC for Kubernetes."
  default     = true
}

variable "admin_group_object_ids" {
  type        = list(string)
  description = "Entra ID groups that get cluster-admin when local accounts are disabled."
  default     = []
}

variable "scale_down_unneeded" {
  type        = string
  description = "How long a node stays idle before the cluster autoscaler removes it (Go duration, e.g. \"10m\")."
  default     = "10m"
  validation {
    condition     = can(regex("^[0-9]+[smh]$", var.scale_down_unneeded))
    error_message = "scale_down_unneeded must be a duration such as \"30s\", \"10m\" or \"1h\"."
  }
}

variable "managed_prometheus_enabled" {
  type        = bool
  description = "Turn on the Azure Monitor metrics add-on (managed Prometheus) in the cluster."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource."
  default     = {}
}
