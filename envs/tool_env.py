"""ToolEnv: the base of environments where the agent calls tools, then answers.

A subclass supplies four things: its tools (:meth:`ToolEnv.make_tools`), a task
drawn from ``self.np_random`` (:meth:`ToolEnv.new_task`), a scorer for the
final answer (:meth:`ToolEnv.score_answer`) and, optionally, extra per-call
reward components (:meth:`ToolEnv.on_tool_result`). The base class writes the
system prompt (tool schemas, call format, answer format), parses each
assistant turn, runs the calls and reports malformed ones precisely.

Each assistant turn either calls tools (one or more
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, a bare JSON
call, or an OpenAI-style message dict with ``tool_calls``) or gives the final
answer as ``<answer>...</answer>`` (exactly one block, no tool calls in the
same message), which ends the episode. Tool results come back as ``tool``
messages (``{"role": "tool", "name": ..., "content": ..., "tool_call_id": ...}``).
A malformed turn gets a message saying what was wrong and the episode goes on.

Reward components (per turn; weights default to 1, override with
``reward_weights=``):

- ``format``: -0.1 when any part of the turn is malformed (bad JSON, unknown
  tool, invalid arguments, too many calls, a bad or mixed answer, or neither
  a call nor an answer).
- ``well_formed``: +0.02 when the turn has calls and every one parses and
  matches its tool's schema. Process reward (see below).
- ``tool_ok``: +0.05 x the fraction of the turn's calls that ran without error.
  Process reward.
- ``tool_error``: -0.05 x the fraction of the turn's calls whose tool failed.
- ``outcome``: the final answer's score (see the subclass), on the answer turn.

Process rewards (``well_formed``, ``tool_ok`` and a subclass's own, listed in
``process_components``) are gated on success (:mod:`agentgym.envs.shaping`):
each turn reports them in ``info["reward_components"]``, but they are paid
only on a correct answer's turn, summed over the episode and capped at
``shaping_cap`` (default 0.2, a fifth of the outcome). A failed episode earns
at most 0, what a wrong answer on the first turn earns, however many tools it
calls. ``shaping="dense"`` pays them every turn instead: farmable, since a
policy that calls one valid tool every turn and never answers then earns
+0.07 a turn (+0.56 over MathTools' 8 turns).

``reset`` returns ``info["tool_schemas"]`` (the tools' JSON schemas, for chat
templates that take ``tools=``; the system prompt already lists them).

Example:
    >>> class Lookup(ToolEnv):
    ...     def make_tools(self): return [self.lookup]
    ...     def new_task(self, options): return "What is the secret?"
    ...     def score_answer(self, answer): return Score.exact(answer == "42")
    ...     @tool
    ...     def lookup(self) -> str:
    ...         '''Return the secret.'''
    ...         return "42"
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agentgym.core import Message, system, tool_message, user
from agentgym.envs.shaping import ShapedEnv
from agentgym.errors import ConfigError
from agentgym.rewards import RewardSpec
from agentgym.tools import (
    ParseError,
    Tool,
    Toolbox,
    ToolCall,
    ToolResult,
    parse_answer,
    parse_tool_calls,
    tool,
)

__all__ = ["ToolEnv", "Score", "TOOL_REWARDS", "tool"]

#: Reward components every ToolEnv emits (subclasses add their own).
TOOL_REWARDS: dict[str, str] = {
    "format": "-0.1 when any part of the turn is malformed (bad JSON, unknown tool, "
    "invalid arguments, bad answer tag, neither call nor answer)",
    "well_formed": "+0.02 when the turn's calls all parse and match their schemas "
    "(process reward: paid on success unless shaping='dense')",
    "tool_ok": "+0.05 x fraction of the turn's calls that ran without error "
    "(process reward: paid on success unless shaping='dense')",
    "tool_error": "-0.05 x fraction of the turn's calls whose tool failed",
    "outcome": "final answer score in [0, 1] on the answer turn",
}

_CALL_EXAMPLE = '<tool_call>\n{"name": "<tool name>", "arguments": {<arguments>}}\n</tool_call>'


@dataclass(frozen=True)
class Score:
    """How a final answer scored."""

    outcome: float
    """Outcome score in [0, 1]."""
    success: bool
    """Whether the task counts as solved."""
    feedback: str = ""
    """Text shown to the agent after its answer."""

    @classmethod
    def exact(cls, correct: bool, feedback: str = "") -> Score:
        """1.0 and success when ``correct``, else 0.0."""
        default = "Correct." if correct else "Incorrect."
        return cls(float(correct), bool(correct), feedback or default)


class ToolEnv(ShapedEnv):
    """Base class of tool-using environments; see the module docstring.

    Args:
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: weight overrides per reward component.
        max_output_chars: tool output longer than this is truncated with a marker.
        shaping: ``"gated"`` (default): process rewards are paid only on a
            correct answer; ``"dense"``: every turn (farmable).
        shaping_cap: the most process reward a solved episode is paid (gated mode).
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(TOOL_REWARDS)
    process_components: ClassVar[frozenset[str]] = frozenset({"well_formed", "tool_ok"})
    #: Opening paragraph of the system prompt.
    intro: ClassVar[str] = "You solve the user's task, using the tools below when they help."
    #: What goes inside the answer tag, for the prompt (e.g. "a number").
    answer_hint: ClassVar[str] = "your final answer"
    #: Tag of the final answer.
    answer_tag: ClassVar[str] = "answer"
    #: Calls run per turn at most; more are rejected (format penalty).
    max_calls_per_turn: ClassVar[int] = 8
    #: Magnitudes of the base components (before weights).
    magnitudes: ClassVar[Mapping[str, float]] = {
        "format": -0.1,
        "well_formed": 0.02,
        "tool_ok": 0.05,
        "tool_error": -0.05,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
        max_output_chars: int = 4000,
        shaping: str = "gated",
        shaping_cap: float | None = 0.2,
    ) -> None:
        missing = set(TOOL_REWARDS) - set(type(self).reward_spec.components)
        if missing:
            raise ConfigError(
                f"{type(self).__name__}.reward_spec lacks the ToolEnv components "
                f"{sorted(missing)}; build it as RewardSpec({{**TOOL_REWARDS, ...}})"
            )
        super().__init__(
            render_mode=render_mode,
            reward_weights=reward_weights,
            shaping=shaping,
            shaping_cap=shaping_cap,
        )
        self.toolbox = Toolbox(self.make_tools(), max_output_chars=max_output_chars)
        self._done = False
        self._turns = 0

    # ------------------------------------------------------ subclass hooks
    def make_tools(self) -> list[Tool]:
        """The tools of this env instance (called once, in ``__init__``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_tools()")

    def new_task(self, options: dict[str, Any]) -> str:
        """Set up a task (use ``self.np_random``) and return the user's task text."""
        raise NotImplementedError(f"{type(self).__name__} must implement new_task()")

    def score_answer(self, answer: str) -> Score:
        """Score the final answer text (the stripped inside of the answer tag)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score_answer()")

    def on_tool_result(self, call: ToolCall, result: ToolResult) -> dict[str, float]:
        """Extra reward components for one call that ran (default: none)."""
        return {}

    def answer_rules(self) -> str:
        """Extra sentences about the answer format for the system prompt."""
        return ""

    # ------------------------------------------------------------- prompt
    def system_prompt(self) -> str:
        """The system prompt: intro, tool schemas, call format, answer format."""
        schemas = "\n".join(json.dumps(s, ensure_ascii=False) for s in self.toolbox.schemas)
        tag = self.answer_tag
        parts = [
            self.intro,
            "# Tools\n\nYou may call one or more tools. Their signatures, as JSON schemas:\n"
            f"<tools>\n{schemas}\n</tools>",
            f"To call a tool, write one block per call (up to {self.max_calls_per_turn} per "
            f"turn):\n{_CALL_EXAMPLE}\nResults come back as tool messages.",
            f"When you are done, reply with {self.answer_hint} as <{tag}>...</{tag}> "
            f"(exactly one {tag} block and no tool calls in that message). " + self.answer_rules(),
        ]
        return "\n\n".join(p.strip() for p in parts)

    # ------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start an episode: system prompt + the task as a user message."""
        super().reset(seed=seed)
        self._done = False
        self._turns = 0
        task = self.new_task(dict(options or {}))
        return self.begin(
            [system(self.system_prompt()), user(task)],
            {"tool_schemas": self.toolbox.schemas},
        )

    def step(
        self, action: str | Mapping[str, Any]
    ) -> tuple[list[Message], float, bool, bool, dict]:
        """Run the turn's tool calls, or score its final answer."""
        zero = {k: 0.0 for k in self.rewards.components}
        if self._done:
            msg = user("The episode is over; call reset() to start a new one.")
            return self.turn([msg], zero, terminated=True)
        self._turns += 1
        text = _action_text(action)
        if text is None:
            msg = user(f"The action must be text, got {type(action).__name__}.")
            return self.turn([msg], {**zero, "format": self.magnitudes["format"]})
        calls = parse_tool_calls(action if isinstance(action, Mapping) else text)
        answer = parse_answer(_strip_calls(text), self.answer_tag)
        if answer is not None and calls:
            msg = user(
                f"Give either tool calls or a final <{self.answer_tag}>, not both in one "
                "message. No tool was run; try again."
            )
            return self.turn([msg], {**zero, "format": self.magnitudes["format"]}, action=text)
        if isinstance(answer, ParseError):
            msg = user(f"Your final answer could not be read: {answer.message}.")
            return self.turn([msg], {**zero, "format": self.magnitudes["format"]}, action=text)
        if isinstance(answer, str):
            return self._finish(answer, zero, text)
        if not calls:
            msg = user(
                f"No tool call or final answer found. Call a tool with\n{_CALL_EXAMPLE}\n"
                f"or answer with <{self.answer_tag}>...</{self.answer_tag}>."
            )
            return self.turn([msg], {**zero, "format": self.magnitudes["format"]}, action=text)
        return self._run_calls(calls, zero, text)

    # ---------------------------------------------------------- internals
    def _finish(self, answer: str, zero: dict[str, float], text: str) -> tuple:
        score = self.score_answer(answer)
        self._done = True
        msgs = [user(score.feedback)] if score.feedback else []
        return self.turn(
            msgs,
            {**zero, "outcome": score.outcome},
            terminated=True,
            outcome=score.outcome,
            success=score.success,
            action=text,
        )

    def _run_calls(self, calls: list, zero: dict[str, float], text: str) -> tuple:
        parts = dict(zero)
        msgs: list[Message] = []
        n_ok = n_err = 0
        malformed = False
        for i, item in enumerate(calls):
            if isinstance(item, ParseError):
                malformed = True
                msgs.append(
                    user(
                        f"Tool call not understood: {item.message}. Write calls as\n{_CALL_EXAMPLE}"
                    )
                )
                continue
            call_id = item.id or f"call_{self._turns}_{i}"
            if i >= self.max_calls_per_turn:
                malformed = True
                msgs.append(
                    tool_message(
                        f"Error: too many calls in one turn (at most {self.max_calls_per_turn}); "
                        "this one was not run.",
                        item.name,
                        call_id,
                    )
                )
                continue
            result = self.toolbox.call(ToolCall(item.name, item.arguments, call_id))
            msgs.append(tool_message(result.content, item.name, call_id))
            if result.status == "invalid":
                malformed = True
                continue
            n_ok += result.ok
            n_err += not result.ok
            for k, v in self.on_tool_result(item, result).items():
                parts[k] = parts.get(k, 0.0) + v
        n = len(calls)
        parts["format"] = self.magnitudes["format"] if malformed else 0.0
        parts["well_formed"] = 0.0 if malformed else self.magnitudes["well_formed"]
        parts["tool_ok"] = self.magnitudes["tool_ok"] * (n_ok / n) if n_ok else 0.0
        parts["tool_error"] = self.magnitudes["tool_error"] * (n_err / n) if n_err else 0.0
        return self.turn(msgs, parts, action=text)


def _action_text(action: Any) -> str | None:
    if isinstance(action, str):
        return action
    if isinstance(action, Mapping):
        content = action.get("content")
        return content if isinstance(content, str) else ""
    return None


def _strip_calls(text: str) -> str:
    """The text without its tool calls (answer tags inside calls don't count)."""
    if "<tool_call>" not in text and text.lstrip().startswith(("{", "[", "```")):
        return ""  # the whole message is a bare JSON call
    return re.sub(r"<tool_call>.*?(</tool_call>|$)", "", text, flags=re.DOTALL)
