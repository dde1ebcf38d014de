"""Small envs shared by the core tests."""

from __future__ import annotations

from agentgym.core import AgentEnv, system, user
from agentgym.rewards import RewardSpec


class Echo(AgentEnv):
    """Repeat the secret word; a wrong answer gets a hint and a small penalty."""

    reward_spec = RewardSpec({"outcome": "1 when echoed", "format": "-0.1 per wrong answer"})

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.word = ["apple", "pear", "plum", "fig"][int(self.np_random.integers(4))]
        return self.begin([system("Echo game."), user(f"Say {self.word}.")])

    def step(self, action):
        if action.strip() == self.word:
            return self.turn(
                [], {"outcome": 1.0}, terminated=True, outcome=1.0, success=True, action=action
            )
        return self.turn([user(f"No. Say {self.word}.")], {"format": -0.1}, action=action)


class Exploding(Echo):
    """Raises on the second step (an env bug the collector must survive)."""

    def step(self, action):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls >= 2:
            raise RuntimeError("env bug")
        return super().step(action)
