locals {
  # The bucket holds checkpoints and model artifacts on every tier (pods on other nodes read
  # what training wrote); the object tier also reads its data set from it.
  bucket  = var.artifacts_bucket || contains(["object", "shared_fs"], var.tier)
  efs     = var.tier == "shared_fs" && var.shared_fs_kind == "efs"
  lustre  = var.tier == "shared_fs" && var.shared_fs_kind == "fsx_lustre"
  fs_port = local.lustre ? 988 : 2049
}

resource "aws_kms_key" "data" {
  count = local.bucket || local.efs || local.lustre ? 1 : 0

  description             = "Data of ${var.name}"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  tags                    = var.tags
}

# --- object tier: data sets, checkpoints, model artifacts ----------------------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:cross-region replication is a disaster-recovery choice of the deployment, not of the workload
  #checkov:skip=CKV_AWS_18:access logging needs a separate log bucket owned by the account's audit set-up
  #checkov:skip=CKV2_AWS_62:no consumer of bucket events in this pipeline
  count = local.bucket ? 1 : 0

  bucket_prefix = "${substr(var.name, 0, 30)}-data-"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "data" {
  count = local.bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  count = local.bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data[0].arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  count = local.bucket ? 1 : 0

  bucket                  = aws_s3_bucket.data[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  count = local.bucket ? 1 : 0

  bucket = aws_s3_bucket.data[0].id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}

# --- shared tier: a file system the training pods mount ------------------------------------

resource "aws_security_group" "fs" {
  count = local.efs || local.lustre ? 1 : 0

  name        = "${var.name}-shared-fs"
  description = "Shared file system of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "fs_clients" {
  count = local.efs || local.lustre ? 1 : 0

  security_group_id            = aws_security_group.fs[0].id
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.fs_port
  to_port                      = local.fs_port
  description                  = "mounts from the nodes"

  lifecycle {
    # As in the network module: a label only, dropped by some EC2 API implementations.
    ignore_changes = [description]
  }
}

resource "aws_efs_file_system" "shared" {
  count = local.efs ? 1 : 0

  encrypted        = true
  kms_key_id       = aws_kms_key.data[0].arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"
  tags             = merge(var.tags, { Name = "${var.name}-shared" })
}

resource "aws_efs_mount_target" "shared" {
  count = local.efs ? length(var.subnet_ids) : 0

  file_system_id  = aws_efs_file_system.shared[0].id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [aws_security_group.fs[0].id]
}

resource "aws_fsx_lustre_file_system" "shared" {
  count = local.lustre ? 1 : 0

  # Capacity comes in 1200 GiB steps; the data set plus room for checkpoints.
  storage_capacity            = max(1200, ceil(var.size_gb * 2 / 1200) * 1200)
  subnet_ids                  = [var.subnet_ids[0]]
  security_group_ids          = [aws_security_group.fs[0].id]
  deployment_type             = "PERSISTENT_2"
  per_unit_storage_throughput = 250
  kms_key_id                  = aws_kms_key.data[0].arn
  data_compression_type       = "LZ4"
  tags                        = merge(var.tags, { Name = "${var.name}-shared" })
}
