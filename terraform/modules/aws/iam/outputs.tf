output "cluster_role_arn" {
  description = "Role the EKS control plane assumes."
  value       = aws_iam_role.cluster.arn
}

output "node_role_arn" {
  description = "Role the worker nodes assume."
  value       = aws_iam_role.node.arn
}

output "policy_attachment_ids" {
  description = "IDs of the managed policy attachments (the cluster and node groups wait for them)."
  value       = concat([aws_iam_role_policy_attachment.cluster.id], [for a in aws_iam_role_policy_attachment.node : a.id])
}
