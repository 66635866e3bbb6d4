output "bucket" {
  description = "S3 bucket of the object tier (and the shared tier's backing store), or null."
  value       = try(aws_s3_bucket.data[0].bucket, null)
}

output "file_system_id" {
  description = "EFS or FSx for Lustre file system of the shared tier, or null."
  value       = local.efs ? aws_efs_file_system.shared[0].id : (local.lustre ? aws_fsx_lustre_file_system.shared[0].id : null)
}

output "file_system_dns_name" {
  description = "DNS name to mount the shared file system, or null."
  value       = local.efs ? aws_efs_file_system.shared[0].dns_name : (local.lustre ? aws_fsx_lustre_file_system.shared[0].dns_name : null)
}

output "file_system_kind" {
  description = "efs, fsx_lustre or null."
  value       = local.efs ? "efs" : (local.lustre ? "fsx_lustre" : null)
}

output "file_system_zones" {
  description = "Zones where the file system is reachable locally (data-locality affinity of the training pods)."
  value       = local.efs ? var.zones : (local.lustre ? [var.zones[0]] : [])
}
