"""Envs and policies shared by the collection tests: a step that hangs, an echo answer."""

from __future__ import annotations

import threading

from tests.core.fixture_envs import Echo

#: Set at the end of a test (tests/rollout/test_async.py) so that abandoned threads exit;
#: in another process (a process or Ray env worker) nothing sets it: the step hangs until
#: the collector kills the worker.
RELEASE = threading.Event()


def echo_answer(messages):
    """The word the Echo env asks for: the last word of its last message."""
    return messages[-1]["content"].rstrip(".").split()[-1]


class HangsOnSeed2(Echo):
    """``step`` never returns on seed 2 (a tool call that hangs)."""

    def reset(self, *, seed=None, options=None):
        self.hang = seed == 2
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if self.hang:
            RELEASE.wait()  # forever, as far as the collector can tell
        return super().step(action)
