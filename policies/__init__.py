"""Policy backends: token ids in, token ids and logprobs out.

- :class:`agentgym.policies.hf.HFPolicy`: transformers, batched sampling with exact logprobs.
- :class:`agentgym.policies.scripted.ScriptedPolicy`: a function of the conversation.
- :class:`agentgym.policies.scripted.RandomChoicePolicy`: uniform over fixed texts.

Backends import torch/transformers lazily, so importing this package stays light.
"""

from __future__ import annotations

from typing import Any

from agentgym.policies.base import Generation, Policy, Request, SamplingParams

__all__ = [
    "Generation",
    "Policy",
    "Request",
    "SamplingParams",
    "HFPolicy",
    "ScriptedPolicy",
    "RandomChoicePolicy",
]

_LAZY = {
    "HFPolicy": "agentgym.policies.hf",
    "ScriptedPolicy": "agentgym.policies.scripted",
    "RandomChoicePolicy": "agentgym.policies.scripted",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentgym.policies' has no attribute {name!r}")
