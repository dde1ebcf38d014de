"""Policy backends: token ids in, token ids and logprobs out."""

from agentgym.policies.base import Generation, Policy, Request, SamplingParams

__all__ = ["Generation", "Policy", "Request", "SamplingParams"]
