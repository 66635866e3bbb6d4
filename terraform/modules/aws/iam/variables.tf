variable "name" {
  description = "Name prefix of the roles (the cluster name)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
