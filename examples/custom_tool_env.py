"""A complete custom tool environment in under 40 lines (see docs/custom_env.md)."""
# ruff: noqa: D102 (the hooks' docstrings are ToolEnv's)

from typing import Literal

import agentgym
from agentgym.envs.tool_env import Score, ToolEnv
from agentgym.tools import tool

STOCK = {"apples": 12, "pears": 7, "plums": 30, "figs": 4}


class Inventory(ToolEnv):
    """How many of two items are in stock together? The agent looks them up."""

    answer_hint = "a whole number"  # shown in the prompt's answer format

    def make_tools(self):
        return [self.stock]  # tools are bound to this env instance

    def new_task(self, options):
        a, b = self.np_random.choice(sorted(STOCK), size=2, replace=False)
        self.gold = STOCK[a] + STOCK[b]
        return f"How many {a} and {b} are in stock together?"

    def score_answer(self, answer):
        return Score.exact(answer == str(self.gold))

    @tool
    def stock(self, item: Literal["apples", "pears", "plums", "figs"]) -> int:
        """Look up how many of an item are in stock.

        Args:
            item: the item to look up.
        """
        return STOCK[item]


agentgym.register("example/Inventory-v0", entry_point=Inventory, max_turns=5)
