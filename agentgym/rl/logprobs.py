"""Sampled-token logprobs and entropy from logits, with one ``[B, T, V]`` buffer in backward.

``logits.gather(target) - logits.logsumexp(-1)`` through autograd costs, in backward,
a softmax buffer from ``logsumexp``, a zero-filled buffer that ``gather`` scatters
into, and their sum: three vocabulary-sized tensors per step (SmolLM2's vocabulary is
49 152 wide). :func:`token_logprobs` gives the same values and gradient,
``d logp / d logits = onehot(target) - softmax(logits)``, written in place into one
buffer.

Example:
    >>> import torch
    >>> logits = torch.tensor([[[2.0, 0.0, -1.0]]], requires_grad=True)
    >>> logp = token_logprobs(logits, torch.tensor([[0]]))
    >>> torch.allclose(logp, torch.log_softmax(logits, -1)[..., 0])
    True
    >>> logp.sum().backward()
    >>> torch.allclose(logits.grad, torch.tensor([[1.0, 0.0, 0.0]]) - logits.softmax(-1))
    True
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["token_logprobs", "entropy", "entropy_with_grad"]


@cache
def _function() -> Any:
    import torch

    class TokenLogprob(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, logits: Any, target: Any) -> Any:
            lse = logits.logsumexp(-1)
            ctx.save_for_backward(logits, target, lse)
            return logits.gather(-1, target[..., None]).squeeze(-1) - lse

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            logits, target, lse = ctx.saved_tensors
            out = (logits - lse[..., None]).exp_()  # softmax, the one buffer
            out.mul_(-grad[..., None])
            out.scatter_add_(-1, target[..., None], grad[..., None])
            return out, None

    return TokenLogprob


def token_logprobs(logits: Any, target: Any) -> Any:
    """``log softmax(logits)[..., target]``: logits ``[..., V]``, target ``[...]`` (int64)."""
    return _function().apply(logits, target)


def entropy(logits: Any, masked: bool = False) -> Any:
    """Entropy of ``softmax(logits)`` over the last axis, without gradient (a metric).

    ``masked``: some logits are ``-inf`` (outside a nucleus); they count with
    probability 0. Computed as ``logsumexp(z) - sum_v p_v z_v``: one buffer (``p``).
    """
    import torch

    with torch.no_grad():
        lse = logits.logsumexp(-1, keepdim=True)
        p = (logits - lse).exp_()
        z = torch.where(torch.isfinite(logits), logits, 0.0) if masked else logits
        mean_logit = (p.unsqueeze(-2) @ z.unsqueeze(-1)).squeeze(-1)  # sum_v p_v z_v
        return (lse - mean_logit).squeeze(-1)


def entropy_with_grad(logits: Any) -> Any:
    """Entropy of ``softmax(logits)`` over the last axis, differentiable (the entropy bonus).

    Example:
        >>> import torch
        >>> z = torch.zeros(1, 4, requires_grad=True)
        >>> h = entropy_with_grad(z)
        >>> round(float(h), 4) == round(float(torch.log(torch.tensor(4.0))), 4)
        True
    """
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    plogp = torch.where(torch.isfinite(logp), logp.exp() * logp, 0.0)  # -inf: outside a nucleus
    return -plogp.sum(-1)
