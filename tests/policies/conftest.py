"""Fixtures for the policy tests: a tiny model with sharper weights, prompts, helpers."""

from __future__ import annotations

import pytest

PROMPTS = (
    [{"role": "user", "content": "Say apple."}],
    [
        {"role": "system", "content": "Echo game. You are a helpful assistant."},
        {"role": "user", "content": "left down left, then up and right"},
    ],
    [{"role": "user", "content": "x"}],
    [
        {"role": "system", "content": "Say plum."},
        {"role": "user", "content": "No."},
        {"role": "assistant", "content": "plum"},
        {"role": "user", "content": "pear fig pear"},
    ],
)


def sharpen(model, std: float = 0.3, seed: int = 0) -> None:
    """Redraw the weight matrices with a larger scale so greedy outputs vary with context.

    The tiny model's N(0, 0.02) init gives nearly flat logits (greedy decoding repeats
    one token); std 0.3 makes continuations prompt-dependent and well separated.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


@pytest.fixture(scope="module")
def sharp_policy(tiny_model_dir):
    """An HFPolicy on the tiny Llama with context-dependent greedy outputs."""
    from agentgym.policies.hf import HFPolicy

    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    sharpen(policy.model)
    return policy


@pytest.fixture(scope="module")
def prompt_ids(tiny_model_dir):
    """Chat-templated prompts of different lengths (left padding matters)."""
    from transformers import AutoTokenizer

    from agentgym.rollout.render import ChatRenderer

    r = ChatRenderer(AutoTokenizer.from_pretrained(tiny_model_dir))
    ids = [r.initial_ids(m) for m in PROMPTS]
    assert len({len(x) for x in ids}) == len(ids)
    return ids
