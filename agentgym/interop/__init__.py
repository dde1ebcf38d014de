"""agentgym environments in other trainers' shapes (TRL's ``environment_factory``)."""

from agentgym.interop.trl import TRLEnvironment, trl_dataset, trl_environment_factory

__all__ = ["TRLEnvironment", "trl_environment_factory", "trl_dataset"]
