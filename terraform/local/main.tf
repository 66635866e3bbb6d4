# The local target's infrastructure: a record of what was planned, kept in Terraform state.
# Every resource is built in (terraform_data), so init/plan/apply run offline with no provider.

locals {
  deployment_id = "local-${var.workload}"
  targets_dir   = "${var.deployment_dir}/prometheus/targets"
}

# The deployment itself; a new iteration updates it in place.
resource "terraform_data" "deployment" {
  input = {
    deployment_id = local.deployment_id
    workload      = var.workload
    iteration     = var.iteration
    pool_names    = sort(keys(var.pools))
  }
}

# One record per planned pool. Changing the instance type replaces the pool, as on a cloud.
resource "terraform_data" "pool" {
  for_each = var.pools

  input = merge(each.value, {
    name          = each.key
    deployment_id = local.deployment_id
  })

  triggers_replace = {
    instance_type = each.value.instance_type
    accelerator   = each.value.accelerator
  }
}

# The storage tier. Changing the tier replaces it: the data it holds does not follow,
# which is why the plan check refuses such a change unless the run approves it.
resource "terraform_data" "storage" {
  input = {
    tier          = var.storage.tier
    size_gb       = var.storage.size_gb
    deployment_id = local.deployment_id
  }

  triggers_replace = {
    tier = var.storage.tier
  }
}
