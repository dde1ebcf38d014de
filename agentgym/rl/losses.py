"""Policy-gradient losses, registered by name like the advantage estimators.

Every loss has one signature, ``(logp, old_logp, adv, mask, cfg) -> (per_token_loss,
metrics)``, with every tensor of shape ``[B, T]`` (``mask`` is 1.0 on trained tokens,
``old_logp`` the sampler's logprobs); the trainer aggregates the per-token loss
with :func:`aggregate` (``TrainConfig.loss_agg``). Add your own with :func:`register_loss`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentgym.catalog import Registry
from agentgym.errors import require

if TYPE_CHECKING:
    from agentgym.rl.config import TrainConfig

__all__ = [
    "LOSSES",
    "PolicyLoss",
    "register_loss",
    "policy_losses",
    "ppo_clip",
    "reinforce",
    "aggregate",
]

PolicyLoss = Callable[..., tuple[Any, dict[str, float]]]

#: The policy losses by name.
LOSSES: Registry[PolicyLoss] = Registry("policy loss")


def register_loss(name: str, *, override: bool = False) -> Callable[[PolicyLoss], PolicyLoss]:
    """Register a policy loss ``(logp, old_logp, adv, mask, cfg) -> (per_token_loss, metrics)``.

    All tensors are ``[B, T]``; ``mask`` is 1.0 on trained tokens. A taken name
    raises unless ``override``.
    """
    return LOSSES.register(name, override=override)


def policy_losses() -> list[str]:
    """Names of the registered policy losses."""
    return LOSSES.available()


@register_loss("ppo_clip")
def ppo_clip(logp, old_logp, adv, mask, cfg: TrainConfig):
    """PPO clipped surrogate: ``-min(ratio * A, clip(ratio, 1-eps_lo, 1+eps_hi) * A)``."""
    torch = require("torch", "hf", "training")
    log_ratio = (logp - old_logp) * mask
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    loss = -torch.minimum(ratio * adv, clipped * adv)
    with torch.no_grad():
        n = mask.sum().clamp(min=1)
        clip_frac = (((ratio - clipped).abs() > 1e-9).float() * mask).sum() / n
        approx_kl = (((ratio - 1) - log_ratio) * mask).sum() / n  # k3 estimator
    return loss, {"loss/clip_frac": float(clip_frac), "loss/approx_kl": float(approx_kl)}


@register_loss("reinforce")
def reinforce(logp, old_logp, adv, mask, cfg: TrainConfig):
    """Plain REINFORCE with importance ratio detached: ``-A * logp``."""
    return -adv * logp, {}


def aggregate(
    per_token: Any, mask: Any, mode: str, *, n_tokens: float, n_seqs: float, norm: float
) -> Any:
    """Sum a micro-batch's share of the batch loss, under one of three aggregations.

    ``per_token`` and ``mask`` are ``[B, T]`` (one row per training sample, i.e. per
    token sequence); ``n_tokens`` (masked tokens) and ``n_seqs`` (rows) count the
    *whole* batch, so that summing the result over micro-batches (and devices) gives
    the batch loss. With ``l_it`` the loss of token t of sequence i, ``m_it`` its mask,
    ``|y_i| = sum_t m_it``:

    - ``token_mean`` (every token weighs the same; the default):
      ``L = sum_i sum_t m_it l_it / sum_i |y_i|``
    - ``seq_mean_token_mean`` (every sequence weighs the same; the GRPO paper):
      ``L = (1 / N) sum_i (sum_t m_it l_it / |y_i|)`` over the N sequences
    - ``token_sum_norm`` (Dr. GRPO; no length bias, C a constant such as the token budget):
      ``L = sum_i sum_t m_it l_it / (N * C)``

    Example:
        >>> import torch
        >>> loss = torch.tensor([[1.0, 1.0, 0.0], [4.0, 0.0, 0.0]])
        >>> mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> kw = dict(n_tokens=3, n_seqs=2, norm=4)
        >>> [float(aggregate(loss, mask, m, **kw)) for m in
        ...  ("token_mean", "seq_mean_token_mean", "token_sum_norm")]
        [2.0, 2.5, 0.75]
    """
    masked = per_token * mask
    if mode == "token_mean":
        return masked.sum() / max(n_tokens, 1.0)
    if mode == "seq_mean_token_mean":
        lengths = mask.sum(dim=-1).clamp(min=1.0)
        return (masked.sum(dim=-1) / lengths).sum() / max(n_seqs, 1.0)
    if mode == "token_sum_norm":
        return masked.sum() / (max(n_seqs, 1.0) * norm)
    raise ValueError(f"unknown loss aggregation {mode!r}")
