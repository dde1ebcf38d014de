"""Policy backends: token ids in, token ids and logprobs out.

- :class:`agentgym.policies.hf.HFPolicy`: transformers, batched sampling with exact logprobs.
- :class:`agentgym.policies.scripted.ScriptedPolicy`: a function of the conversation.
- :class:`agentgym.policies.scripted.RandomChoicePolicy`: uniform over fixed texts.
- :class:`agentgym.policies.vllm.VLLMPolicy`: an in-process vLLM engine (weights synced
  from the trainer's copy after each update).
- :class:`agentgym.policies.openai.OpenAIPolicy`: an OpenAI-compatible completions
  server (vLLM, or ``agentgym serve``), token ids in and out over HTTP.
- :class:`agentgym.policies.server.PolicyServer`: serves any policy over that API.

:func:`make_policy` builds one from a spec such as ``"hf:PATH"`` (backends are a
registry, :data:`POLICY_BACKENDS`); :mod:`agentgym.policies.models` and
:mod:`agentgym.policies.tinymodels` build the models they load.

Backends import torch/transformers lazily, so importing this package stays light.
"""

from __future__ import annotations

from typing import Any

from agentgym.policies.base import Generation, Policy, Request, SamplingParams
from agentgym.policies.factory import POLICY_BACKENDS, load_policy, make_policy

__all__ = [
    "POLICY_BACKENDS",
    "make_policy",
    "load_policy",
    "Generation",
    "Policy",
    "Request",
    "SamplingParams",
    "HFPolicy",
    "ScriptedPolicy",
    "RandomChoicePolicy",
    "VLLMPolicy",
    "OpenAIPolicy",
    "PolicyServer",
]

_LAZY = {
    "HFPolicy": "agentgym.policies.hf",
    "ScriptedPolicy": "agentgym.policies.scripted",
    "RandomChoicePolicy": "agentgym.policies.scripted",
    "VLLMPolicy": "agentgym.policies.vllm",
    "OpenAIPolicy": "agentgym.policies.openai",
    "PolicyServer": "agentgym.policies.server",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentgym.policies' has no attribute {name!r}")
