"""ConfigurableResources of the Dagster layer: thin handles on the domain's components."""

from aiinfra_pipelines.resources.deployment import DeploymentResource, WorkloadSpecResource
from aiinfra_pipelines.resources.terraform import TerraformResource

__all__ = ["DeploymentResource", "TerraformResource", "WorkloadSpecResource"]
