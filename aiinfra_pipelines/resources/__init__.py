"""ConfigurableResources of the Dagster layer: thin handles on the domain's components."""

from aiinfra_pipelines.resources.deployment import DeploymentResource, WorkloadSpecResource

__all__ = ["DeploymentResource", "WorkloadSpecResource"]
