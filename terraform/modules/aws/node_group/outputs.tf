output "node_group_name" {
  description = "Name of the managed node group."
  value       = aws_eks_node_group.this.node_group_name
}

output "instance_types" {
  description = "Instance types of the node group."
  value       = aws_eks_node_group.this.instance_types
}

output "capacity_type" {
  description = "ON_DEMAND or SPOT."
  value       = aws_eks_node_group.this.capacity_type
}

output "launch_template_id" {
  description = "Launch template (local NVMe pools only), else null."
  value       = try(aws_launch_template.nvme[0].id, null)
}
