variable "subscription_id" {
  type        = string
  description = "Azure subscription to deploy into."
}

variable "name" {
  type        = string
  description = "Name of the cluster and prefix of every other resource."
  default     = "modelfleet"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name))
    error_message = "name must be 3-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "location" {
  type        = string
  description = "Azure region with H100 capacity and quota for the chosen VM sizes."
  default     = "eastus2"
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version; null takes AKS's default (the chart needs 1.29 or newer)."
  default     = null
}

variable "system_pool" {
  type = object({
    vm_size         = optional(string, "Standard_D8s_v5")
    min_count       = optional(number, 2)
    max_count       = optional(number, 5)
    zones           = optional(list(string), ["1", "2", "3"])
    os_disk_size_gb = optional(number, 128)
  })
  description = "System pool settings (see modules/aks)."
  default     = {}
}

variable "gpu_pools" {
  type = map(object({
    enabled        = optional(bool, true)
    vm_size        = string
    max_count      = number
    spot           = optional(bool, false)
    spot_max_price = optional(number, -1)
    zones          = optional(list(string))
  }))
  description = "H100 pools by name (the name becomes the kubernetes.azure.com/agentpool label); each scales from 0."
  default = {
    nc40h100 = { vm_size = "Standard_NC40adis_H100_v5", max_count = 4 }
    nc80h100 = { vm_size = "Standard_NC80adis_H100_v5", max_count = 4, spot = true }
    # 8 x H100 with InfiniBand for multi-node training; off until you have ND quota. 4 nodes: the
    # 70B ZeRO-3 example (examples/trainingjob-zero3-nd96.yaml) runs on 4.
    nd96h100 = { vm_size = "Standard_ND96isr_H100_v5", max_count = 4, enabled = false }
  }
  validation {
    condition     = length([for name, pool in var.gpu_pools : name if pool.enabled]) > 0
    error_message = "Enable at least one GPU pool."
  }
}

variable "local_account_disabled" {
  type        = bool
  description = "Use Entra ID + Azure RBAC instead of the cluster's local admin account (needs kubelogin where Terraform runs)."
  default     = true
}

variable "admin_group_object_ids" {
  type        = list(string)
  description = "Entra ID groups that administer the cluster and Grafana."
  default     = []
}

variable "operator_namespace" {
  type        = string
  description = "Namespace of the modelfleet operator."
  default     = "modelfleet-system"
}

variable "runtime_service_accounts" {
  type = list(object({
    namespace = string
    name      = string
  }))
  description = "Service accounts of training and serving pods (one per team namespace) that may use the runtime identity."
  default     = [{ namespace = "ml-team", name = "modelfleet-runtime" }]
}

variable "storage_account_name" {
  type        = string
  description = "Storage account name (3-24 lowercase letters/digits, globally unique); null derives it from name."
  default     = null
}

variable "monitoring_enabled" {
  type        = bool
  description = "Create Azure Monitor managed Prometheus and turn on the cluster's metrics add-on."
  default     = true
}

variable "grafana_enabled" {
  type        = bool
  description = "Create Azure Managed Grafana reading the managed Prometheus (only with monitoring_enabled)."
  default     = true
}

variable "install_chart" {
  type        = bool
  description = "Install the modelfleet chart with Terraform (turn off when Argo CD installs it)."
  default     = true
}

variable "chart" {
  type        = string
  description = "The modelfleet chart: a local path or an OCI reference."
  default     = "../../../charts/modelfleet"
}

variable "chart_version" {
  type        = string
  description = "Chart version when chart is an OCI reference; null for a local path."
  default     = null
}

variable "chart_values" {
  type        = any
  description = "Extra values for the chart (e.g. image.registry, replicas)."
  default     = {}
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource."
  default     = {}
}
