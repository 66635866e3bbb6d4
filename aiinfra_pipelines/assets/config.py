"""Typed run config of an iteration: the retuning proposal that the next iteration applies."""


from typing import Optional

import dagster as dg
from pydantic import Field


class ProposalConfig(dg.Config):
    """A proposal from the previous iteration's `retuning_proposal`; empty for a first iteration."""

    source_iteration: str = Field("", description="The iteration that proposed this configuration.")
    reason: str = Field("", description="Why the proposal was made.")
    policy_family: Optional[str] = Field(None, description="static | reactive | predictive | hybrid")
    policy_params: dict[str, float] = Field(default_factory=dict, description="The policy's tuned numeric parameters.")
    policy_metric: Optional[str] = Field(None, description="The reactive policy's metric: queue | utilization | rps.")
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    inference_instance_types: list[str] = Field(default_factory=list)
    training_instance_type: Optional[str] = None
    target_rps: Optional[float] = Field(None, description="Observed peak request rate to size the inference pool for.")


class InfrastructureConfig(dg.Config):
    approve_stateful_changes: bool = Field(
        False, description="Allow a plan that destroys or replaces a stateful resource (cluster, file system, bucket)."
    )
