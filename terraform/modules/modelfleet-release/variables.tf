variable "chart" {
  type        = string
  description = "Chart reference: a local path to charts/modelfleet or an OCI URL (oci://REGISTRY/charts/modelfleet)."
}

variable "chart_version" {
  type        = string
  description = "Chart version for an OCI or repository chart; null for a local path."
  default     = null
}

variable "release_name" {
  type        = string
  description = "Helm release name."
  default     = "modelfleet"
}

variable "namespace" {
  type        = string
  description = "Namespace of the operator."
  default     = "modelfleet-system"
}

variable "operator_service_account" {
  type        = string
  description = "Service account of the operator; must match the operator identity's federated credential."
  default     = "modelfleet-operator"
}

variable "operator_client_id" {
  type        = string
  description = "Client ID of the operator's user-assigned identity."
}

variable "runtime_client_id" {
  type        = string
  description = "Client ID of the runtime identity that training and serving pods use for blob storage."
}

variable "storage_account_name" {
  type        = string
  description = "Storage account holding datasets, checkpoints and results."
}

variable "managed_prometheus_scraping" {
  type        = bool
  description = "Render a ServiceMonitor for Azure Monitor managed Prometheus (its azmonitoring.coreos.com CRD)."
  default     = false
}

variable "prometheus_url" {
  type        = string
  description = "Prometheus that KEDA queries for the engines' metrics (the managed workspace's query endpoint); empty: the chart's default."
  default     = ""
}

variable "keda_identity_client_id" {
  type        = string
  description = "Client ID of the workload identity KEDA's operator queries Azure Monitor managed Prometheus as; empty: KEDA queries unauthenticated."
  default     = ""
}

variable "extra_values" {
  type        = any
  description = "More chart values, merged over the ones this module sets."
  default     = {}
}
