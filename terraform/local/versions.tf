terraform {
  required_version = ">= 1.5.0"

  # Built-in resources only (terraform_data): no provider to install, no cloud account.
  # The state path is given at init time: -backend-config=path=<state_dir>/terraform/local/<workload>/terraform.tfstate
  backend "local" {}
}
