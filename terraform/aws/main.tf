# The aws target: network, IAM, an EKS cluster, one managed node group per pool of the
# hardware plan, and the plan's storage tier. Variables come from the plan as JSON tfvars.

provider "aws" {
  region = var.region

  # Against a local AWS API emulator every service shares one endpoint and no real account exists.
  skip_credentials_validation = var.aws_endpoint != null
  skip_metadata_api_check     = var.aws_endpoint != null
  skip_region_validation      = var.aws_endpoint != null
  s3_use_path_style           = var.aws_endpoint != null

  dynamic "endpoints" {
    for_each = var.aws_endpoint == null ? [] : [var.aws_endpoint]
    content {
      ec2  = endpoints.value
      eks  = endpoints.value
      iam  = endpoints.value
      sts  = endpoints.value
      s3   = endpoints.value
      efs  = endpoints.value
      fsx  = endpoints.value
      kms  = endpoints.value
      logs = endpoints.value
    }
  }

  default_tags {
    tags = var.tags
  }
}

module "network" {
  source = "../modules/aws/network"

  name        = var.name
  az_count    = var.az_count
  nat_gateway = var.nat_gateway
}

module "iam" {
  source = "../modules/aws/iam"

  name = var.name
}

module "eks" {
  source = "../modules/aws/eks"

  name                   = var.name
  kubernetes_version     = var.kubernetes_version
  role_arn               = module.iam.cluster_role_arn
  subnet_ids             = module.network.private_subnet_ids
  security_group_ids     = [module.network.node_security_group_id]
  endpoint_public_access = var.endpoint_public_access
  public_access_cidrs    = var.public_access_cidrs
  depends_on_ids         = module.iam.policy_attachment_ids
}

module "node_group" {
  source   = "../modules/aws/node_group"
  for_each = var.node_pools

  cluster_name  = module.eks.cluster_name
  name          = each.key
  node_role_arn = module.iam.node_role_arn
  subnet_ids    = module.network.private_subnet_ids
  pool          = each.value

  depends_on = [module.iam]
}

module "storage" {
  source = "../modules/aws/storage"

  name                     = var.name
  tier                     = var.storage.tier
  size_gb                  = var.storage.size_gb
  shared_fs_kind           = var.storage.shared_fs_kind
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  zones                    = module.network.zones
  client_security_group_id = module.network.node_security_group_id
  force_destroy            = var.force_destroy_bucket
}
