locals {
  # Pools are usually named after the workload already (digits-train): no doubled prefix.
  node_group_name = startswith(var.name, "${var.cluster_name}-") ? var.name : "${var.cluster_name}-${var.name}"

  # AL2023 nodeadm: stripe the instance store (local NVMe) as RAID0 and put kubelet and
  # containerd state on it, so pods' emptyDir and image layers use the fast disks.
  nvme_user_data = join("\n", [
    "MIME-Version: 1.0",
    "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"",
    "",
    "--BOUNDARY",
    "Content-Type: application/node.eks.aws",
    "",
    yamlencode({
      apiVersion = "node.eks.aws/v1alpha1"
      kind       = "NodeConfig"
      spec       = { instance = { localStorage = { strategy = "RAID0" } } }
    }),
    "--BOUNDARY--",
    "",
  ])
}

# Only where the plan wants local NVMe: the launch template carries the disk set-up.
resource "aws_launch_template" "nvme" {
  count = var.pool.local_nvme ? 1 : 0

  name_prefix = "${local.node_group_name}-"
  user_data   = base64encode(local.nvme_user_data)

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.pool.disk_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = local.node_group_name })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "this" {
  cluster_name    = var.cluster_name
  node_group_name = local.node_group_name
  node_role_arn   = var.node_role_arn
  subnet_ids      = var.subnet_ids

  instance_types = var.pool.instance_types
  ami_type       = var.pool.ami_type
  capacity_type  = var.pool.capacity_type
  # With a launch template the root disk is defined there.
  disk_size = var.pool.local_nvme ? null : var.pool.disk_size_gb

  scaling_config {
    desired_size = var.pool.desired_size
    min_size     = var.pool.min_size
    max_size     = var.pool.max_size
  }

  # No update_config block: EKS's default (one node unavailable at a time during an update) is what
  # this module wants, and an explicit block would drift against APIs that do not report it.

  labels = var.pool.labels

  dynamic "taint" {
    for_each = var.pool.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  dynamic "launch_template" {
    for_each = aws_launch_template.nvme
    content {
      id      = launch_template.value.id
      version = launch_template.value.latest_version
    }
  }

  tags = merge(var.tags, { "aiinfra.io/pool" = var.name, "aiinfra.io/role" = var.pool.role })

  lifecycle {
    # The cluster autoscaler (and KEDA-driven scale-out) moves desired_size; Terraform keeps min/max.
    # remote_access is never set by this module; some EKS API implementations report a default one.
    ignore_changes = [scaling_config[0].desired_size, remote_access]
  }
}
