"""The environment contract: :class:`AgentEnv`, a Gymnasium env for LLM agents.

Observations are the *new* chat messages the env adds this turn; actions are
the assistant's text. Rewards come as named components (see
:mod:`agentgym.rewards`); the last step carries ``info["outcome"]`` and
``info["success"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium

from agentgym.rewards import RewardSpec
from agentgym.spaces import Chat, Utterance

__all__ = ["Message", "AgentEnv", "system", "user", "assistant", "tool_message"]

#: A chat message: ``{"role": ..., "content": ...}`` plus optional extra keys.
Message = dict[str, Any]


def system(content: str) -> Message:
    """A system message."""
    return {"role": "system", "content": content}


def user(content: str) -> Message:
    """A user message (env feedback to the agent)."""
    return {"role": "user", "content": content}


def assistant(content: str) -> Message:
    """An assistant message (the agent's action)."""
    return {"role": "assistant", "content": content}


def tool_message(content: str, name: str, tool_call_id: str | None = None) -> Message:
    """A tool-result message."""
    msg: Message = {"role": "tool", "name": name, "content": content}
    if tool_call_id is not None:
        msg["tool_call_id"] = tool_call_id
    return msg


class AgentEnv(gymnasium.Env[list, str]):
    """Base class of multi-turn text environments.

    Subclasses implement ``reset`` and ``step`` like any Gymnasium env and build
    their step return with :meth:`turn`, which sums the named reward components
    and fills ``info`` consistently::

        class Echo(AgentEnv):
            reward_spec = RewardSpec({"outcome": "1 if the agent echoes the word"})

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.word = "apple"
                return [user(f"Say {self.word}.")], {}

            def step(self, action):
                ok = action.strip() == self.word
                return self.turn([], {"outcome": float(ok)}, terminated=True,
                                 outcome=float(ok), success=ok)

    Every step's ``info`` holds ``reward_components``, ``outcome`` (the episode's
    outcome score so far, final when the episode ends) and ``success``, so the
    last step has them whether the env terminated or a time limit truncated it.
    Turn limits come from ``register(..., max_turns=N)`` (Gymnasium's TimeLimit sets
    ``truncated``; a step that terminates never also reports ``truncated``).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"]}
    #: Components this env emits, with descriptions; subclasses override.
    reward_spec: ClassVar[RewardSpec] = RewardSpec({"outcome": "episode outcome score"})

    def __init__(
        self,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; "
                f"choose one of {self.metadata['render_modes']} or None"
            )
        self.render_mode = render_mode
        self.observation_space = Chat()
        self.action_space = Utterance()
        self.rewards = type(self).reward_spec.with_weights(reward_weights)
        self._transcript: list[Message] = []
        self._outcome = 0.0
        self._success = False

    # ----------------------------------------------------------------- helpers
    def begin(self, messages: list[Message], info: dict[str, Any] | None = None) -> tuple:
        """Build ``reset``'s return and start a fresh transcript."""
        self._transcript = list(messages)
        self._outcome, self._success = 0.0, False
        self._maybe_render()
        return messages, dict(info or {})

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
        """Build ``step``'s return from new messages and named reward components.

        Args:
            messages: the new messages this turn (feedback, tool results).
            components: reward parts, names declared in ``reward_spec``.
            terminated: the task ended (solved, failed, gave up).
            outcome: the episode's outcome score, if it changed this turn.
            success: whether the episode counts as solved, if known now.
            action: the assistant text, kept for ``render``.
            info: extra info entries.
        """
        if outcome is not None:
            self._outcome = float(outcome)
        if success is not None:
            self._success = bool(success)
        parts = {k: float(v) for k, v in components.items()}
        reward = self.rewards.combine(parts)
        out = dict(info or {})
        out["reward_components"] = parts
        out["outcome"] = self._outcome
        out["success"] = self._success
        if action is not None:
            self._transcript.append({"role": "assistant", "content": action})
        self._transcript.extend(messages)
        self._maybe_render()
        return messages, reward, bool(terminated), False, out

    # ------------------------------------------------------------------ render
    def render(self) -> str | None:
        """``ansi``: the transcript as text; ``human``: print it."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        text = format_transcript(self._transcript)
        if self.render_mode == "ansi":
            return text
        return None

    def _maybe_render(self) -> None:
        if self.render_mode == "human" and self._transcript:
            import sys

            sys.stdout.write(format_transcript(self._transcript[-1:]) + "\n")


def format_transcript(messages: list[Message]) -> str:
    """Human-readable text of a list of messages."""
    parts = []
    for m in messages:
        head = m["role"].upper() + (f" ({m['name']})" if m.get("name") else "")
        parts.append(f"[{head}]\n{m['content']}")
    return "\n\n".join(parts)
