output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone, in zone order."
  value       = aws_subnet.private[*].id
}

output "zones" {
  description = "Availability zones of the private subnets, in the same order."
  value       = local.zones
}

output "node_security_group_id" {
  description = "Security group of the worker nodes."
  value       = aws_security_group.nodes.id
}
