"""KL to a reference policy: per-token estimators and the reference model itself.

The samples come from the policy pi; with ``r = log pi(y) - log ref(y)`` at each
sampled token (Schulman, "Approximating KL divergence", 2020):

- ``k1 = r``: unbiased, high variance, can be negative;
- ``k2 = r^2 / 2``: biased (low bias near pi = ref), low variance, >= 0;
- ``k3 = exp(-r) - 1 + r``: unbiased, low variance, >= 0 (GRPO's choice).

The reference is the starting model. :class:`Reference` holds it the cheapest way:
with LoRA it is the base model with the adapter switched off (no second copy); for
full fine-tuning, a frozen copy made before the first update. With ``kl.coef == 0``
the trainer builds no reference at all.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

from agentgym.errors import ConfigError

__all__ = ["KL_ESTIMATORS", "kl_estimate", "Reference"]


def _k1(log_ratio: Any) -> Any:
    return log_ratio


def _k2(log_ratio: Any) -> Any:
    return 0.5 * log_ratio**2


def _k3(log_ratio: Any) -> Any:
    return (-log_ratio).exp() - 1.0 + log_ratio


#: Estimator name -> function of ``log pi - log ref`` (any tensor shape).
KL_ESTIMATORS: dict[str, Callable[[Any], Any]] = {"k1": _k1, "k2": _k2, "k3": _k3}


def kl_estimate(logp: Any, ref_logp: Any, estimator: str) -> Any:
    """Per-token KL(pi || ref) estimate, same shape as ``logp``.

    Example:
        >>> import math, torch
        >>> logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
        >>> [round(float(kl_estimate(logp, ref, k)[0]), 4) for k in ("k1", "k2", "k3")]
        [0.6931, 0.2402, 0.1931]
    """
    if estimator not in KL_ESTIMATORS:
        raise ConfigError(f"unknown KL estimator {estimator!r}; valid: {sorted(KL_ESTIMATORS)}")
    return KL_ESTIMATORS[estimator](logp - ref_logp)


class Reference:
    """The reference policy for KL: adapter disabled (LoRA) or a frozen copy.

    Args:
        model: the trained model (a peft model when ``lora`` is True).
        lora: the model is a peft model: the reference is its base with the adapter off.
    """

    def __init__(self, model: Any, lora: bool) -> None:
        self.lora = lora
        self.copy: Any = None
        if not lora:
            self.copy = copy.deepcopy(model).eval()
            for p in self.copy.parameters():
                p.requires_grad_(False)

    @contextlib.contextmanager
    def model(self, trained: Any) -> Iterator[Any]:
        """Context giving the module to run as the reference (``trained`` is the policy)."""
        if self.copy is not None:
            yield self.copy
            return
        with trained.disable_adapter():
            yield trained
