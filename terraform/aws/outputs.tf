output "deployment_id" {
  description = "Identifier of this deployment, stable across iterations."
  value       = "aws-${var.name}"
}

output "iteration" {
  description = "Iteration that last applied this deployment."
  value       = var.iteration
}

output "region" {
  description = "Region of the cluster."
  value       = var.region
}

output "vpc_id" {
  description = "VPC of the cluster."
  value       = module.network.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets of the nodes."
  value       = module.network.private_subnet_ids
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint (kubeconfig server)."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA certificate of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority
}

output "pool_names" {
  description = "Planned pools, sorted."
  value       = sort(keys(module.node_group))
}

output "node_group_names" {
  description = "Managed node group of each pool, by pool name."
  value       = { for pool, ng in module.node_group : pool => ng.node_group_name }
}

output "instance_types" {
  description = "Instance type of each pool, by pool name."
  value       = { for pool, ng in module.node_group : pool => ng.instance_types[0] }
}

output "capacity_types" {
  description = "ON_DEMAND or SPOT, by pool name."
  value       = { for pool, ng in module.node_group : pool => ng.capacity_type }
}

output "bucket" {
  description = "S3 bucket of the object/shared tier, or null."
  value       = module.storage.bucket
}

output "file_system_id" {
  description = "Shared file system (EFS or FSx for Lustre), or null."
  value       = module.storage.file_system_id
}

output "file_system_dns_name" {
  description = "DNS name to mount the shared file system, or null."
  value       = module.storage.file_system_dns_name
}

output "file_system_kind" {
  description = "efs, fsx_lustre or null."
  value       = module.storage.file_system_kind
}

output "file_system_zones" {
  description = "Zones local to the shared file system (training pods' zone affinity)."
  value       = module.storage.file_system_zones
}

output "storage_tier" {
  description = "The provisioned storage tier."
  value       = var.storage.tier
}
