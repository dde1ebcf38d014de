"""Shaping that cannot be farmed: process rewards are paid only to episodes that succeed.

Process rewards (a well-formed tool call, a gold document found, information
gained, progress toward a goal) help a policy learn, but paid on every turn
they can be collected without ever solving the task. Paid densely, a policy
that calls one valid tool every turn and never answers earns +0.70 in
SearchQA, while an honest wrong answer on the first turn earns 0; under GRPO
with ``reward="total"`` that teaches an agent to call tools forever whenever
success is rare. :class:`ShapedEnv` is the base of the built-in envs that
have process rewards, and gates them on success by default (as
Posterior-GRPO does):

- ``shaping="gated"`` (default): the env's :attr:`~ShapedEnv.process_components`
  are still reported every turn, raw, in ``info["reward_components"]`` (so
  turn-level estimators and analyses can use them), but the turn's scalar
  reward leaves them out. Their weighted sum over the episode is paid on the
  turn that succeeds (``info["success"]`` True), at most ``shaping_cap``. An
  episode that fails, whether it ends or is cut by the turn limit, is never
  paid them: **no failed episode earns more than a prompt failure**.
- ``shaping="dense"``: every turn pays its process components in its own
  scalar (no gate, no cap). Explicit opt-in, and **farmable**: a policy that
  never solves the task can collect them turn after turn until the turn limit.

Penalties (``format``, ``tool_error``) and the outcome are never gated.

Every step's ``info`` also holds ``shaping_paid`` (process reward included in
this turn's scalar) and ``shaping_deferred`` (process reward earned so far in
the episode and not paid). So ``reward == rewards.combine(the other
components) + info["shaping_paid"]``.

Example:
    >>> from agentgym.core import system, user
    >>> from agentgym.rewards import RewardSpec
    >>> class Climb(ShapedEnv):
    ...     reward_spec = RewardSpec({"step": "+0.1 per rung", "outcome": "1 at the top"})
    ...     process_components = frozenset({"step"})
    ...     def reset(self, *, seed=None, options=None):
    ...         super().reset(seed=seed)
    ...         self.height = 0
    ...         return self.begin([system("Climb."), user("Say up.")])
    ...     def step(self, action):
    ...         self.height += action == "up"
    ...         top = self.height == 3
    ...         parts = {"step": 0.1 * (action == "up"), "outcome": float(top)}
    ...         return self.turn([], parts, terminated=top, success=top or None)
    >>> env = Climb()
    >>> _ = env.reset(seed=0)
    >>> [round(env.step("up")[1], 2) for _ in range(3)]  # the rungs are paid at the top
    [0.0, 0.0, 1.3]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from agentgym.core import AgentEnv, Message
from agentgym.errors import ConfigError

__all__ = ["ShapedEnv", "SHAPING_MODES"]

#: Values of the ``shaping`` constructor argument.
SHAPING_MODES = ("gated", "dense")


class ShapedEnv(AgentEnv):
    """An :class:`~agentgym.core.AgentEnv` whose process rewards are gated on success.

    Subclasses declare :attr:`process_components` (names from their
    ``reward_spec``) and build step returns with :meth:`turn` as usual,
    passing ``success=True`` on the turn that solves the task. See the module
    docstring for the two modes.

    Args:
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: per-component weight overrides.
        shaping: ``"gated"`` (default: process rewards paid only on success)
            or ``"dense"`` (paid every turn; farmable).
        shaping_cap: the most process reward one episode is paid in gated
            mode (None: no cap).

    Raises:
        ConfigError: an unknown ``shaping`` mode, a negative or non-finite
            cap, or process components the reward spec does not declare.
    """

    #: Components that are process rewards (gated on success unless ``shaping="dense"``).
    process_components: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
        shaping: str = "gated",
        shaping_cap: float | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode, reward_weights=reward_weights)
        if shaping not in SHAPING_MODES:
            raise ConfigError(
                f"shaping must be one of {SHAPING_MODES}, got {shaping!r}: 'gated' pays process "
                "rewards only to episodes that succeed, 'dense' every turn (farmable)"
            )
        if shaping_cap is not None and not (math.isfinite(shaping_cap) and shaping_cap >= 0):
            raise ConfigError(
                f"shaping_cap must be None or a finite number >= 0, got {shaping_cap!r}"
            )
        undeclared = set(self.process_components) - set(self.rewards.components)
        if undeclared:
            raise ConfigError(
                f"{type(self).__name__}.process_components names {sorted(undeclared)}, "
                f"which its reward_spec does not declare ({sorted(self.rewards.components)})"
            )
        self.shaping = shaping
        self.shaping_cap = None if shaping_cap is None else float(shaping_cap)
        self._deferred = 0.0

    def begin(self, messages: list[Message], info: dict[str, Any] | None = None) -> tuple:
        """Start an episode: nothing earned, nothing deferred."""
        self._deferred = 0.0
        return super().begin(messages, info)

    def turn(
        self,
        messages: list[Message],
        components: Mapping[str, float],
        *,
        terminated: bool = False,
        outcome: float | None = None,
        success: bool | None = None,
        action: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Like :meth:`AgentEnv.turn`; process components are paid as ``shaping`` says."""
        obs, reward, term, trunc, out = super().turn(
            messages,
            components,
            terminated=terminated,
            outcome=outcome,
            success=success,
            action=action,
            info=info,
        )
        parts = out["reward_components"]
        process = {k: v for k, v in parts.items() if k in self.process_components}
        earned = self.rewards.combine(process)
        if self.shaping == "dense":
            paid = earned
        else:
            self._deferred += earned
            paid = 0.0
            if success is True:
                cap = self.shaping_cap
                paid = self._deferred if cap is None else min(self._deferred, cap)
                self._deferred = 0.0
            rest = {k: v for k, v in parts.items() if k not in self.process_components}
            reward = self.rewards.combine(rest) + paid
        out["shaping_paid"] = paid
        out["shaping_deferred"] = self._deferred
        return obs, reward, term, trunc, out
