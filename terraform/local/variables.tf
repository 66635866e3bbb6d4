variable "workload" {
  description = "Workload name from the spec (a DNS label); names the deployment."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.workload))
    error_message = "The workload must be a DNS label: lowercase letters, digits and '-', at most 40 characters."
  }
}

variable "iteration" {
  description = "Iteration of the lifecycle that last applied this deployment."
  type        = number
  default     = 0
}

variable "pools" {
  description = "Node pools of the hardware plan, keyed by pool name."
  type = map(object({
    role                  = string
    cloud                 = string
    region                = string
    instance_type         = string
    accelerator           = optional(string)
    accelerators_per_node = number
    count                 = number
    min_count             = number
    max_count             = number
    spot                  = bool
    price_per_hour        = number
    vcpus                 = number
    memory_gib            = number
    labels                = map(string)
    taints = list(object({
      key    = string
      value  = string
      effect = string
    }))
  }))

  validation {
    condition     = length(var.pools) > 0
    error_message = "The plan must have at least one pool."
  }

  validation {
    condition     = alltrue([for p in var.pools : contains(["training", "inference", "system"], p.role)])
    error_message = "Each pool's role must be training, inference or system."
  }

  validation {
    condition     = alltrue([for p in var.pools : p.min_count <= p.count && p.count <= p.max_count])
    error_message = "Each pool needs min_count <= count <= max_count."
  }
}

variable "storage" {
  description = "Storage tier of the plan: memory, nvme, shared_fs or object, and its size."
  type = object({
    tier    = string
    size_gb = number
  })

  validation {
    condition     = contains(["memory", "nvme", "shared_fs", "object"], var.storage.tier)
    error_message = "storage.tier must be memory, nvme, shared_fs or object."
  }
}

variable "deployment_dir" {
  description = "Folder of this deployment's state; the telemetry stage writes scrape target files under it."
  type        = string
}
