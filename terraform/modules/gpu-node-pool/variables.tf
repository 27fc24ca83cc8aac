variable "name" {
  type        = string
  description = "Pool name; nodes get it as kubernetes.azure.com/agentpool."
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,11}$", var.name))
    error_message = "name must be 1-12 lowercase letters or digits, starting with a letter (AKS Linux pool rule)."
  }
}

variable "kubernetes_cluster_id" {
  type        = string
  description = "Resource ID of the AKS cluster."
}

variable "vm_size" {
  type        = string
  description = "GPU VM size of the pool: one of modelfleet's GPU sizes (operator/modelfleet_api/instance_types.py; a chart test keeps this list equal to it)."
  validation {
    condition = contains([
      "Standard_NC40adis_H100_v5",
      "Standard_NC80adis_H100_v5",
      "Standard_ND96isr_H100_v5",
      "Standard_ND96isr_H200_v5",
      "Standard_ND96asr_v4",
      "Standard_ND96amsr_A100_v4",
      "Standard_NC24ads_A100_v4",
      "Standard_NC48ads_A100_v4",
      "Standard_NC96ads_A100_v4",
    ], var.vm_size)
    error_message = "vm_size must be a GPU size modelfleet knows: Standard_NC40adis_H100_v5, Standard_NC80adis_H100_v5, Standard_ND96isr_H100_v5, Standard_ND96isr_H200_v5, Standard_ND96asr_v4, Standard_ND96amsr_A100_v4, Standard_NC24ads_A100_v4, Standard_NC48ads_A100_v4, Standard_NC96ads_A100_v4."
  }
}

variable "max_count" {
  type        = number
  description = "Most nodes the autoscaler may add (bounded by your regional H100 quota)."
  validation {
    condition     = var.max_count >= 1 && var.max_count <= 100
    error_message = "max_count must be between 1 and 100."
  }
}

variable "priority" {
  type        = string
  description = "Regular (on-demand) or Spot (evictable, much cheaper; training resumes from checkpoints)."
  default     = "Regular"
  validation {
    condition     = contains(["Regular", "Spot"], var.priority)
    error_message = "priority must be Regular or Spot."
  }
}

variable "spot_max_price" {
  type        = number
  description = "Highest hourly price per Spot VM in USD; -1 pays up to the on-demand price and is never evicted for price."
  default     = -1
  validation {
    condition     = var.spot_max_price == -1 || var.spot_max_price > 0
    error_message = "spot_max_price must be -1 or a positive price."
  }
}

variable "zones" {
  type        = list(string)
  description = "Availability zones for the pool; H100 sizes are zonal in few regions, so null (regional) is the default."
  default     = null
}

variable "vnet_subnet_id" {
  type        = string
  description = "Subnet for the pool's nodes; null uses the cluster's."
  default     = null
}

variable "os_disk_size_gb" {
  type        = number
  description = "OS disk size; container images of the training and serving runtimes are large."
  default     = 256
}

variable "os_disk_type" {
  type        = string
  description = "Managed or Ephemeral OS disk."
  default     = "Managed"
  validation {
    condition     = contains(["Managed", "Ephemeral"], var.os_disk_type)
    error_message = "os_disk_type must be Managed or Ephemeral."
  }
}

variable "node_labels" {
  type        = map(string)
  description = "Extra node labels (AKS already sets agentpool, instance-type and accelerator labels)."
  default     = {}
}

variable "tags" {
  type        = map(string)
  description = "Tags on the pool's scale set."
  default     = {}
}
