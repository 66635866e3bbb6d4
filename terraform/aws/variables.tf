variable "name" {
  description = "Workload name; names the cluster and every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label of at most 40 characters."
  }
}

variable "region" {
  description = "AWS region of the cluster."
  type        = string
}

variable "iteration" {
  description = "Lifecycle iteration that applied this deployment (reported, not stamped on resources)."
  type        = number
  default     = 0
}

variable "kubernetes_version" {
  description = "Kubernetes version of the EKS control plane."
  type        = string
  default     = "1.30"
}

variable "az_count" {
  description = "Zones the private subnets span."
  type        = number
  default     = 2
}

variable "nat_gateway" {
  description = "Egress for the private subnets through a NAT gateway."
  type        = bool
  default     = true
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API publicly (to public_access_cidrs)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach a public Kubernetes API endpoint."
  type        = list(string)
  default     = []
}

variable "node_pools" {
  description = "One managed node group per hardware pool of the plan, keyed by pool name."
  type = map(object({
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
  }))

  validation {
    condition     = length(var.node_pools) > 0
    error_message = "node_pools needs at least one pool."
  }
}

variable "storage" {
  description = "Storage tier of the plan and, for the shared tier, which file system."
  type = object({
    tier           = string
    size_gb        = number
    shared_fs_kind = optional(string, "efs")
  })
}

variable "force_destroy_bucket" {
  description = "Let teardown delete the data bucket with its objects."
  type        = bool
  default     = false
}

variable "aws_endpoint" {
  description = "One endpoint for every AWS API (a local AWS API emulator); null talks to AWS."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource (provider default_tags)."
  type        = map(string)
  default     = {}
}
