output "deployment_id" {
  description = "Identifier of this deployment, stable across iterations."
  value       = terraform_data.deployment.output.deployment_id
}

output "iteration" {
  description = "Iteration that last applied this deployment."
  value       = terraform_data.deployment.output.iteration
}

output "pool_names" {
  description = "Names of the provisioned pools, sorted."
  value       = sort(keys(terraform_data.pool))
}

output "instance_types" {
  description = "Instance type of each pool, by pool name."
  value       = { for name, p in terraform_data.pool : name => p.output.instance_type }
}

output "pools" {
  description = "Every attribute of each pool, by pool name."
  value       = { for name, p in terraform_data.pool : name => p.output }
}

output "storage_tier" {
  description = "The provisioned storage tier."
  value       = terraform_data.storage.output.tier
}

output "prometheus_targets_dir" {
  description = "Folder for Prometheus file_sd target files of this deployment."
  value       = local.targets_dir
}
