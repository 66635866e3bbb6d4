variable "name" {
  description = "Name prefix of the storage resources (the cluster name)."
  type        = string
}

variable "tier" {
  description = "Storage tier of the plan: memory and nvme need no shared storage; shared_fs adds a shared file system (EFS or FSx for Lustre); the bucket follows artifacts_bucket (and always exists for object and shared_fs)."
  type        = string

  validation {
    condition     = contains(["memory", "nvme", "shared_fs", "object"], var.tier)
    error_message = "tier must be memory, nvme, shared_fs or object."
  }
}

variable "size_gb" {
  description = "Planned size of the data set; sizes the FSx for Lustre file system."
  type        = number
  default     = 1
}

variable "shared_fs_kind" {
  description = "File system of the shared tier: efs (regional, elastic) or fsx_lustre (one zone, high throughput)."
  type        = string
  default     = "efs"

  validation {
    condition     = contains(["efs", "fsx_lustre"], var.shared_fs_kind)
    error_message = "shared_fs_kind must be efs or fsx_lustre."
  }
}

variable "vpc_id" {
  description = "VPC of the file system's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets: EFS gets a mount target in each; FSx for Lustre lives in the first."
  type        = list(string)
}

variable "zones" {
  description = "Zones of subnet_ids, in the same order (reported for data-locality affinity)."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group of the clients (the nodes) allowed to mount the file system."
  type        = string
}

variable "artifacts_bucket" {
  description = "Create the S3 bucket on every tier (checkpoints and model artifacts); false: only for the object and shared_fs tiers."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let teardown delete a bucket that still holds objects."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
