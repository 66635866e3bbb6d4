variable "cluster_name" {
  description = "EKS cluster the node group joins."
  type        = string
}

variable "name" {
  description = "Pool name from the hardware plan; the node group is named <cluster>-<pool> unless the pool name already starts with <cluster>-."
  type        = string
}

variable "node_role_arn" {
  description = "IAM role of the nodes."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the nodes launch into."
  type        = list(string)
}

variable "pool" {
  description = "The pool: instance types, AMI type, capacity type, sizes, labels, taints, disk and local NVMe."
  type = object({
    role           = string
    instance_types = list(string)
    ami_type       = string
    capacity_type  = string
    desired_size   = number
    min_size       = number
    max_size       = number
    labels         = map(string)
    taints = list(object({
      key    = string
      value  = string
      effect = string
    }))
    disk_size_gb = number
    local_nvme   = bool
  })

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.pool.capacity_type)
    error_message = "pool.capacity_type must be ON_DEMAND or SPOT."
  }

  validation {
    condition     = var.pool.min_size <= var.pool.desired_size && var.pool.desired_size <= var.pool.max_size && var.pool.max_size >= 1
    error_message = "pool sizes need min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = alltrue([for t in var.pool.taints : contains(["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"], t.effect)])
    error_message = "taint effects must be NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
