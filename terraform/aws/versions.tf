terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }

  # The state path is given at init time: -backend-config=path=<state_dir>/terraform/aws/<workload>/terraform.tfstate
  backend "local" {}
}
