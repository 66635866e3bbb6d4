variable "name" {
  description = "Cluster name."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes version of the control plane."
  type        = string
  default     = "1.30"
}

variable "role_arn" {
  description = "IAM role of the control plane."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cluster (at least two zones)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Extra security groups of the control plane's network interfaces."
  type        = list(string)
  default     = []
}

variable "endpoint_public_access" {
  description = "Expose the API endpoint publicly (restricted to public_access_cidrs). Off: reach it from inside the VPC."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach a public API endpoint."
  type        = list(string)
  default     = []
}

variable "depends_on_ids" {
  description = "IDs the cluster must wait for (the role's policy attachments)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
