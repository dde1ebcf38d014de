"""Use an agentgym env as TRL's ``GRPOTrainer(environment_factory=...)``.

TRL's environments are objects whose public methods are *tools* the model calls
during generation, with a ``reset(**row)`` that starts an episode (its string is
appended to the prompt's last user message) and a ``get_reward()`` read once the
rollout ends. :class:`TRLEnvironment` adapts any registered env to that shape:
``reset`` resets it with the row's ``seed`` (and ``options``) and returns the
env's first messages as text; the one tool, :meth:`TRLEnvironment.act`, plays a
turn and returns the env's reply; ``get_reward`` is the episode's return (sum of
turn rewards, or the outcome with ``reward="outcome"``).

Example (TRL >= 1.0 with transformers >= 5.2 and a model whose chat template
renders tool calls)::

    from trl import GRPOConfig, GRPOTrainer
    from agentgym.interop import trl_dataset, trl_environment_factory

    trainer = GRPOTrainer(
        model="Qwen/Qwen3-0.6B",
        args=GRPOConfig(max_steps=100, num_generations=4),
        train_dataset=trl_dataset("agentgym/Wordle-v0", seeds=range(1000)),
        environment_factory=trl_environment_factory("agentgym/Wordle-v0"),
    )
    trainer.train()

TRL samples each turn as a tool call, so the policy must learn the tool-call
format on top of the task; agentgym's own trainer (``agentgym train``) keeps the
exact sampled tokens and per-turn rewards instead. This module imports nothing
from TRL or torch.

Example:
    >>> env = trl_environment_factory("agentgym/Wordle-v0")()
    >>> print(env.reset(seed=0).splitlines()[0][:30])
    Wordle. Guess the secret five-
    >>> reply = env.act("crane")
    >>> env.get_reward()  # Wordle's info_gain is paid only to a solved game
    0.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from agentgym.errors import ConfigError
from agentgym.registry import make

__all__ = ["TRLEnvironment", "trl_environment_factory", "trl_dataset"]

_REWARDS = ("return", "outcome")


def _text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(str(m.get("content", "")) for m in messages)


class TRLEnvironment:
    """One agentgym env in TRL's environment shape (see the module docstring).

    Only ``reset``, ``act`` and ``get_reward`` are public: TRL offers every other
    public method to the model as a tool.

    Args:
        env_id: a registered env id (or ``remote:URL``).
        reward: ``"return"`` (sum of turn rewards) or ``"outcome"`` (the final outcome).
        **make_kwargs: passed to :func:`agentgym.make` (``max_turns``, env kwargs).
    """

    def __init__(self, env_id: str, *, reward: str = "return", **make_kwargs: Any) -> None:
        if reward not in _REWARDS:
            raise ConfigError(f"reward must be one of {_REWARDS}, got {reward!r}")
        self._env = make(env_id, **make_kwargs)
        self._reward_kind = reward
        self._return = 0.0
        self._outcome = 0.0
        self._done = True

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None, **_: Any
    ) -> str:
        """Start an episode for one dataset row; returns the env's opening messages as text."""
        obs, _info = self._env.reset(seed=None if seed is None else int(seed), options=options)
        self._return, self._outcome, self._done = 0.0, 0.0, False
        return _text(list(obs))

    def act(self, action: str) -> str:
        """Play one turn: send your move or answer to the environment and get its reply.

        Args:
            action: your move or answer for this turn, in the format the task asks for.
        """
        if self._done:
            return "The episode is over; no more actions are accepted."
        obs, reward, terminated, truncated, info = self._env.step(str(action))
        self._return += float(reward)
        self._outcome = float(info.get("outcome", self._outcome))
        self._done = bool(terminated or truncated)
        reply = _text(list(obs))
        if self._done:
            reply += "\n\n(The episode is over.)"
        return reply

    def get_reward(self) -> float:
        """The episode's reward: its return, or its outcome (see ``reward``)."""
        return self._outcome if self._reward_kind == "outcome" else self._return


def trl_environment_factory(env_id: str, **kwargs: Any) -> Callable[[], TRLEnvironment]:
    """A zero-argument callable making :class:`TRLEnvironment` s of ``env_id`` (for TRL)."""

    def factory() -> TRLEnvironment:
        return TRLEnvironment(env_id, **kwargs)

    return factory


def trl_dataset(
    env_id: str,
    seeds: Iterable[int],
    *,
    instruction: str = "Solve the task. Play each turn by calling the `act` tool.",
) -> Any:
    """A ``datasets.Dataset`` of rows ``{"prompt": [user message], "seed": s}`` for TRL.

    TRL calls ``reset(**row)`` on each rollout's environment: the seed picks the task,
    and the env's opening text is appended to ``instruction``.
    """
    from agentgym.errors import require

    datasets = require("datasets", "data", "TRL datasets")
    rows = [
        {"prompt": [{"role": "user", "content": instruction}], "seed": int(s), "env_id": env_id}
        for s in seeds
    ]
    return datasets.Dataset.from_list(rows)
