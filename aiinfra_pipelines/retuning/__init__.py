"""Retuning: from an iteration's measurements to the next iteration's thresholds and hardware mix."""

from aiinfra_pipelines.retuning.propose import Proposal, propose

__all__ = ["Proposal", "propose"]
