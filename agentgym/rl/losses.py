"""Policy-gradient losses, registered by name like the advantage estimators.

Every loss has one signature, ``(logp, old_logp, adv, mask, cfg) -> (per_token_loss,
metrics)``, with every tensor of shape ``[B, T]`` (``mask`` is 1.0 on trained tokens,
``old_logp`` the sampler's logprobs); the trainer aggregates the per-token loss.
Add your own with :func:`register_loss`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentgym.catalog import Registry
from agentgym.errors import require

if TYPE_CHECKING:
    from agentgym.rl.config import TrainConfig

__all__ = ["LOSSES", "PolicyLoss", "register_loss", "policy_losses", "ppo_clip", "reinforce"]

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
