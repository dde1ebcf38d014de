"""Named reward components and how they combine into a turn's scalar reward.

An env reports each turn's reward as parts, e.g. ``{"format": -0.1,
"progress": 0.3}``; the scalar passed to the learner is their weighted sum.
The parts are kept in ``info["reward_components"]`` and in the trajectory, so
estimators and analyses can use them separately.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentgym.errors import ConfigError

__all__ = ["RewardSpec", "combine"]


@dataclass(frozen=True)
class RewardSpec:
    """Documents the reward components an env may emit and their default weights.

    Example:
        >>> spec = RewardSpec({"format": "-0.1 for an unparseable action"})
        >>> spec.combine({"format": -0.1})
        -0.1
    """

    components: Mapping[str, str]
    """Component name -> one-line description (shown in docs and ``agentgym list``)."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """Weight per component; a missing name has weight 1.0."""

    def with_weights(self, weights: Mapping[str, float] | None) -> RewardSpec:
        """Return a copy whose weights are overridden by ``weights``; unknown names raise."""
        if not weights:
            return self
        unknown = set(weights) - set(self.components)
        if unknown:
            raise ConfigError(
                f"unknown reward component(s) {sorted(unknown)}; "
                f"this env emits {sorted(self.components)}"
            )
        return RewardSpec(self.components, {**self.weights, **weights})

    def combine(self, parts: Mapping[str, float]) -> float:
        """Weighted sum of ``parts``; a part that is not declared is a bug and raises."""
        unknown = set(parts) - set(self.components)
        if unknown:
            raise ConfigError(
                f"reward component(s) {sorted(unknown)} are not declared; "
                f"declared: {sorted(self.components)}"
            )
        return combine(parts, self.weights)


def combine(parts: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """Weighted sum of reward parts (weight 1.0 unless given); NaN parts raise."""
    weights = weights or {}
    total = 0.0
    for name, value in parts.items():
        v = float(value)
        if math.isnan(v):
            raise ConfigError(f"reward component {name!r} is NaN")
        total += weights.get(name, 1.0) * v
    return total
