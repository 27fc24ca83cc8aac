variable "name" {
  type        = string
  description = "Storage account name (globally unique)."
  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.name))
    error_message = "name must be 3-24 lowercase letters or digits (Azure storage account rule)."
  }
}

variable "location" {
  type        = string
  description = "Azure region of the account; keep it next to the GPUs."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group that holds the account."
}

variable "replication_type" {
  type        = string
  description = "Replication: LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  default     = "ZRS"
  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "containers" {
  type        = list(string)
  description = "Blob containers to create."
  default     = ["datasets", "checkpoints", "results"]
}

variable "data_contributors" {
  type        = map(string)
  description = "Principals given Storage Blob Data Contributor on the account, as name => principal (object) ID."
  default     = {}
}

variable "tags" {
  type        = map(string)
  description = "Tags on the account."
  default     = {}
}
