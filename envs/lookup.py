"""Lookup: the smallest task that cannot be solved without calling a tool.

Each task draws a private table that gives every item a code (codes are drawn
at random per task) and asks for the code of one item::

    user:      What is the code of item delta?
    assistant: <tool_call>{"name": "lookup", "arguments": {"item": "delta"}}</tool_call>
    tool:      delta: Z41
    assistant: <answer>Z41</answer>

The table is never shown: the agent must call ``lookup(item)`` with the asked
item, read the code from the tool result and answer with it. Guessing succeeds
with probability ``1 / num_codes``. Held-out seeds give new tables, so a policy
that scores on them has learned to *use* the tool, not to remember codes.

Reward components (the :data:`~agentgym.envs.tool_env.TOOL_REWARDS` of every
:class:`~agentgym.envs.tool_env.ToolEnv`, plus one):

- ``found``: +1 the first time in an episode the lookup returns the asked item's
  code (on the call's turn).
- ``grounded``: on the answer turn, +1 when the answer is a code that a lookup
  returned in this episode (for the asked item or not: the answer was read), -1
  when no lookup came before it (a guess), 0 otherwise.

- ``extra_call``: -1 for each lookup after the first in an episode (one is enough).

All three have weight 0 by default (a failed episode then earns no more than a prompt
failure); enable them as turn-level credit, e.g.
``reward_weights={"found": 0.5, "grounded": 0.5}``.

:meth:`Lookup.valid_actions` lists every well-formed action (all calls and all
answers), e.g. for a warm start on random well-formed actions that teaches the
format and nothing about any task; :meth:`Lookup.protocol_actions` narrows them to
the protocol's shape (calls first, answers after a tool result), still task-blind.

Example:
    >>> import agentgym
    >>> env = agentgym.make("agentgym/Lookup-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs[-1]["content"]
    'What is the code of item bravo?'
    >>> obs, reward, terminated, truncated, info = env.step(Lookup.call("bravo"))
    >>> obs[0]["content"]
    'bravo: N66'
    >>> obs, reward, terminated, truncated, info = env.step(Lookup.answer("N66"))
    >>> round(reward, 2), terminated, info["success"]  # + the gated shaping of the call
    (1.07, True, True)
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from agentgym.core import Message
from agentgym.errors import ConfigError
from agentgym.registry import register
from agentgym.rewards import RewardSpec
from agentgym.tools import Tool, ToolCall, ToolResult, tool

from .tool_env import TOOL_REWARDS, Score, ToolEnv

__all__ = ["Lookup", "ITEMS", "CODES", "register_envs"]

#: Item names (NATO alphabet): one per table row.
ITEMS: tuple[str, ...] = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
)

#: Codes a table may give an item: a capital letter and two digits.
CODES: tuple[str, ...] = tuple(f"{c}{n}" for c in "KNRZ" for n in (17, 28, 41, 53, 66, 92))


class Lookup(ToolEnv):
    """Find an item's code with the ``lookup`` tool, then answer it.

    Args:
        num_items: items in each task's table (the first ``num_items`` of :data:`ITEMS`).
        num_codes: codes a table draws from (the first ``num_codes`` of :data:`CODES`);
            guessing the answer succeeds with probability ``1 / num_codes``.
        prompt: ``"full"``, the system prompt every tool env writes (tool schemas,
            call and answer formats), or ``"short"``, the same instructions in two
            lines (for tiny models, where prompt length is most of the compute).
        **kwargs: :class:`~agentgym.envs.tool_env.ToolEnv` options (render_mode,
            reward_weights, max_output_chars).

    ``reset(options={"item": "delta"})`` fixes the asked item (the codes still come
    from the seed).
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(
        {
            **TOOL_REWARDS,
            "found": "+1 the first time the lookup returns the asked item's code; "
            "weight 0 unless enabled",
            "grounded": "on the answer turn: +1 if the answer is a code a lookup returned "
            "in this episode, -1 if no lookup came before it; weight 0 unless enabled",
            "extra_call": "-1 for each lookup after the first in an episode; "
            "weight 0 unless enabled",
        },
        weights={"found": 0.0, "grounded": 0.0, "extra_call": 0.0},
    )
    intro: ClassVar[str] = "You answer questions about a private table, which only a tool can read."
    answer_hint: ClassVar[str] = "the code"

    def __init__(
        self, num_items: int = 8, num_codes: int = 16, prompt: str = "full", **kwargs: Any
    ) -> None:
        if prompt not in ("full", "short"):
            raise ConfigError(f"prompt must be 'full' or 'short', got {prompt!r}")
        if not 2 <= num_items <= len(ITEMS):
            raise ConfigError(f"num_items must be in 2..{len(ITEMS)}, got {num_items}")
        if not 2 <= num_codes <= len(CODES):
            raise ConfigError(f"num_codes must be in 2..{len(CODES)}, got {num_codes}")
        self.items = ITEMS[:num_items]
        self.codes = CODES[:num_codes]
        self.table: dict[str, str] = {}
        self.item = ""
        self.prompt = prompt
        self._found = False
        self._shown: set[str] = set()
        self._asked: set[str] = set()
        self._answer: str | None = None
        super().__init__(**kwargs)

    # ----------------------------------------------------------- ToolEnv hooks
    def make_tools(self) -> list[Tool]:
        """The one tool: ``lookup``."""
        return [self.lookup]

    def new_task(self, options: dict[str, Any]) -> str:
        """Draw the table's codes and the asked item from ``self.np_random``."""
        rng = self.np_random
        self.table = {k: self.codes[int(rng.integers(len(self.codes)))] for k in self.items}
        item = options.get("item")
        if item is None:
            item = self.items[int(rng.integers(len(self.items)))]
        elif item not in self.items:
            raise ConfigError(f"options['item'] must be one of {list(self.items)}, got {item!r}")
        self.item, self._found, self._answer = str(item), False, None
        self._shown, self._asked = set(), set()
        return f"What is the code of item {self.item}?"

    def score_answer(self, answer: str) -> Score:
        """Exact match with the asked item's code."""
        self._answer = answer.strip()
        return Score.exact(answer.strip() == self.table[self.item])

    def on_tool_result(self, call: ToolCall, result: ToolResult) -> dict[str, float]:
        """``found`` the first time the asked item's code comes back; ``extra_call``."""
        if not result.ok:
            return {}
        item = call.arguments["item"]
        parts = {"extra_call": -1.0} if self._asked else {}
        self._asked.add(item)
        self._shown.add(self.table[item])
        if item == self.item and not self._found:
            self._found = True
            parts["found"] = 1.0
        return parts

    def system_prompt(self) -> str:
        """The tool env's system prompt, or its two-line form with ``prompt="short"``."""
        if self.prompt == "full":
            return super().system_prompt()
        return (
            f"{self.intro} Look an item up with {self.call('ITEM')}.\n"
            f"Then reply {self.answer('CODE')}."
        )

    def step(self, action: Any) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """A :class:`ToolEnv` step, plus ``grounded`` on the answer turn."""
        obs, reward, terminated, truncated, info = super().step(action)
        if terminated and self._answer is not None:
            grounded = 1.0 if self._answer in self._shown else -1.0 if not self._asked else 0.0
            info["reward_components"]["grounded"] = grounded
            reward += self.rewards.combine({"grounded": grounded})
            self._answer = None  # once per episode
        return obs, reward, terminated, truncated, info

    @tool
    def lookup(self, item: str) -> str:
        """Return the code of an item in the private table.

        Args:
            item: the item's name.
        """
        if item not in self.table:
            raise ValueError(f"no item {item!r}; items: {', '.join(self.items)}")
        return f"{item}: {self.table[item]}"

    # ------------------------------------------------------------- actions
    @staticmethod
    def call(item: str) -> str:
        """The action that looks ``item`` up."""
        args = json.dumps({"name": "lookup", "arguments": {"item": item}})
        return f"<tool_call>{args}</tool_call>"

    @staticmethod
    def answer(code: str) -> str:
        """The action that answers ``code``."""
        return f"<answer>{code}</answer>"

    def valid_actions(self) -> list[str]:
        """Every well-formed action: a lookup of each item, an answer with each code.

        The calls are listed as many times as it takes for a uniform pick from the
        list to be a call about half the time.
        """
        calls = [self.call(k) for k in self.items]
        repeat = max(1, round(len(self.codes) / len(self.items)))
        return calls * repeat + [self.answer(c) for c in self.codes]

    def protocol_actions(self, messages: list[Message]) -> list[str]:
        """The well-formed actions that fit the protocol's shape after ``messages``.

        Every lookup while no tool result has come back, every answer after one: a
        uniform pick from these calls once, then answers, and still knows nothing of
        any task (a random item, then a random code).

        Example:
            >>> env = Lookup(num_items=2, num_codes=2)
            >>> env.protocol_actions([{"role": "user", "content": "Code of alpha?"}])[0]
            '<tool_call>{"name": "lookup", "arguments": {"item": "alpha"}}</tool_call>'
            >>> env.protocol_actions([{"role": "tool", "content": "bravo: K17"}])
            ['<answer>K17</answer>', '<answer>K28</answer>']
        """
        if any(m.get("role") == "tool" for m in messages):
            return [self.answer(c) for c in self.codes]
        return [self.call(k) for k in self.items]

    def action_pieces(self) -> list[str]:
        """Strings that make up every well-formed action.

        The call's fixed prefix and suffix, the answer tags, the items and the codes
        (for tokenizers that keep each piece one token).
        """
        prefix, suffix = self.call("@@").split("@@")
        return [prefix, suffix, "<answer>", "</answer>", *self.items, *self.codes]


def register_envs() -> None:
    """Register ``agentgym/Lookup-v0``."""
    register(
        "agentgym/Lookup-v0",
        entry_point="agentgym.envs.lookup:Lookup",
        max_turns=4,
    )
