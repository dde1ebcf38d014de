"""Policy backends by name: ``make_policy("hf:PATH")`` and friends.

A policy spec is ``KIND`` or ``KIND:ARGUMENT``; the kind names a backend in
:data:`POLICY_BACKENDS`, whose factory builds the policy from the argument:

- ``default``: the embedded SmolLM2-135M-Instruct through transformers;
- ``hf:PATH_OR_NAME``: a transformers model (:class:`~agentgym.policies.hf.HFPolicy`);
- ``vllm:PATH``: an in-process vLLM engine (:class:`~agentgym.policies.vllm.VLLMPolicy`);
- ``openai:URL[,URL2...][@TOKENIZER]``: OpenAI-compatible servers, each episode
  pinned to one (:class:`~agentgym.policies.openai.OpenAIPolicy`);
- ``ray:SPEC[#N]``: N policy servers as Ray actors, each serving SPEC
  (:class:`~agentgym.policies.rayserve.RayPolicy`);
- ``random:word1,word2[@TOKENIZER]``: a uniform pick among fixed texts
  (:class:`~agentgym.policies.scripted.RandomChoicePolicy`).

Installed packages add kinds through the ``agentgym.policies`` entry-point group
(an entry point names a factory ``(argument, *, device, seed) -> Policy``).

Example:
    >>> sorted(POLICY_BACKENDS.available())
    ['default', 'hf', 'openai', 'random', 'ray', 'vllm']
    >>> make_policy("hff:model")
    Traceback (most recent call last):
    ...
    agentgym.errors.ConfigError: unknown policy backend 'hff'. Did you mean 'hf'? Available: ['default', 'hf', 'openai', 'random', 'ray', 'vllm']
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentgym.catalog import Registry

__all__ = ["POLICY_BACKENDS", "PolicyFactory", "make_policy", "load_policy"]

PolicyFactory = Callable[..., Any]
"""``(argument: str, *, device: str | None, seed: int) -> Policy``."""

#: Policy backends by kind; plugins add theirs through the ``agentgym.policies`` group.
POLICY_BACKENDS: Registry[PolicyFactory] = Registry("policy backend", "agentgym.policies")


def make_policy(spec: str, device: str | None = None, seed: int = 0) -> Any:
    """Build a policy from a spec such as ``"hf:PATH"`` (see the module docstring).

    Raises:
        ConfigError: unknown kind (with a "did you mean") or a malformed argument.
    """
    kind, _, rest = spec.partition(":")
    return POLICY_BACKENDS.get(kind)(rest, device=device, seed=seed)


def load_policy(model: str, device: str | None = None) -> Any:
    """An :class:`~agentgym.policies.hf.HFPolicy` for a path, hub-style name, or ``default``."""
    from agentgym.policies.hf import HFPolicy

    if model in ("", "default"):
        from agentgym.policies.models import default_model_path

        model = str(default_model_path())
    return HFPolicy.from_pretrained(model, device=device)


@POLICY_BACKENDS.register("default")
@POLICY_BACKENDS.register("hf")
def _hf(argument: str, *, device: str | None = None, seed: int = 0) -> Any:
    return load_policy(argument or "default", device)


@POLICY_BACKENDS.register("vllm")
def _vllm(argument: str, *, device: str | None = None, seed: int = 0) -> Any:
    from agentgym.policies.vllm import VLLMPolicy

    return VLLMPolicy.from_pretrained(argument)


@POLICY_BACKENDS.register("openai")
def _openai(argument: str, *, device: str | None = None, seed: int = 0) -> Any:
    from agentgym.policies.openai import OpenAIPolicy
    from agentgym.remote.auth import resolve_token

    url, _, tok = argument.rpartition("@") if "@" in argument else (argument, "", "")
    urls = [u for u in url.split(",") if u]  # several servers: each episode sticks to one
    # The bearer token of `agentgym serve --token` (or an API key) comes from $AGENTGYM_TOKEN.
    return OpenAIPolicy(
        urls[0] if len(urls) == 1 else urls, tokenizer=tok or None, api_key=resolve_token(None)
    )


@POLICY_BACKENDS.register("ray")
def _ray(argument: str, *, device: str | None = None, seed: int = 0) -> Any:
    from agentgym.errors import ConfigError
    from agentgym.policies.rayserve import RayPolicy

    spec, _, n = argument.partition("#")
    if not spec or (n and not n.isdigit()):
        raise ConfigError(f"expected ray:SPEC[#N], e.g. ray:vllm:/models/m#4, got {argument!r}")
    return RayPolicy(spec, int(n or 1), seed=seed)


@POLICY_BACKENDS.register("random")
def _random(argument: str, *, device: str | None = None, seed: int = 0) -> Any:
    from agentgym.errors import require
    from agentgym.policies.scripted import RandomChoicePolicy

    choices, _, tok = argument.partition("@")
    if not tok:
        from agentgym.policies.models import default_model_path

        tok = str(default_model_path())
    auto = require("transformers", "hf", "the random policy's tokenizer").AutoTokenizer
    return RandomChoicePolicy(choices.split(","), auto.from_pretrained(tok), seed=seed)
