"""A tiny env for the training tests: every sampled answer scores differently.

``Spell`` asks for one word; the reward is a smooth function of the answer's
characters, so the G answers of a group almost never tie and every step carries
a learning signal, even from an untrained tiny model.
"""

from __future__ import annotations

import agentgym
from agentgym.core import AgentEnv, system, user
from agentgym.rewards import RewardSpec


class Spell(AgentEnv):
    """Say a word; reward = share of the letters a, e, p, l in the answer."""

    reward_spec = RewardSpec({"outcome": "share of a/e/p/l characters in the answer"})

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        word = ["apple", "pear", "plum", "fig"][int(self.np_random.integers(4))]
        return self.begin([system("Echo game."), user(f"Say {word}.")])

    def step(self, action):
        text = action.strip()
        score = sum(c in "aepl" for c in text) / max(len(text), 1)
        return self.turn(
            [], {"outcome": score}, terminated=True, outcome=score, success=score > 0.5
        )


if "test/Spell-v0" not in agentgym.list_envs():
    agentgym.register("test/Spell-v0", entry_point="tests.rl.envs:Spell", max_turns=1)
