"""Envs the remote tests serve (registered in the server's process, which is the test's)."""

from __future__ import annotations

import time

import agentgym
from tests.core.fixture_envs import Echo


class Slow(Echo):
    """Takes ``delay`` seconds per step (a hung env, for client timeouts)."""

    def __init__(self, delay: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return super().step(action)


agentgym.register("test/Echo-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)
agentgym.register("test/Exploding-v0", entry_point="tests.core.fixture_envs:Exploding", max_turns=3)
agentgym.register("test/Slow-v0", entry_point="tests.remote.envs:Slow", max_turns=2)
