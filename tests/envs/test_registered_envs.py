"""Every registered agentgym env (built-in or plugin) follows the Gymnasium API."""

from __future__ import annotations

import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.errors import DependencyMissing
from agentgym.spaces import Chat

# Built-in and plugin envs only: other test modules register throw-away envs
# (e.g. one that raises on purpose) in the same worker process.
ENV_IDS = [e for e in agentgym.list_envs() if not e.startswith("test/")]
BUILTIN = (
    "agentgym/FrozenLake-v0",
    "agentgym/Taxi-v0",
    "agentgym/CliffWalking-v0",
    "agentgym/Blackjack-v0",
    "agentgym/Wordle-v0",
    "agentgym/Countdown-v0",
)
NASTY = ["", " ", "\x00", "é" * 50, "🙂<action>", "</answer><answer>", "x" * 100_000, "\n\t\r"]


def _make(env_id: str) -> gymnasium.Env:
    try:
        return agentgym.make(env_id)
    except DependencyMissing as e:  # an optional extra (e.g. textworld) is not installed
        pytest.skip(str(e))


def _paid(env: gymnasium.Env, info: dict) -> float:
    """The turn's reward from its components: process rewards count as ``shaping_paid``."""
    parts = info["reward_components"]
    process = getattr(env, "process_components", frozenset())
    rest = {k: v for k, v in parts.items() if k not in process}
    return env.rewards.combine(rest) + (info["shaping_paid"] if process else 0.0)


def _check(env: gymnasium.Env) -> list[str]:
    """Run check_env; return the warnings it raised (as text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    return [str(w.message) for w in caught]


def test_builtin_envs_are_listed():
    assert set(BUILTIN) <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_unwrapped(env_id, capsys):
    env = _make(env_id)
    try:
        problems = [w for w in _check(env.unwrapped) if "render" not in w.lower()]
        assert problems == []
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_made(env_id, capsys):
    env = _make(env_id)
    try:
        # The only expected warning: the made env carries Gymnasium's wrappers (TimeLimit).
        problems = [
            w
            for w in _check(env)
            if "different from the unwrapped" not in w and "render" not in w.lower()
        ]
        assert problems == []
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_observations(env_id):
    env = _make(env_id)
    try:
        first, _ = env.reset(seed=7)
        env.reset(seed=8)
        again, _ = env.reset(seed=7)
        assert first == again
        assert first in Chat()
        assert first[0]["role"] == "system" and first[-1]["role"] == "user"
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_text_steps_never_raise(env_id):
    env = _make(env_id)
    try:
        env.action_space.seed(0)
        actions = [env.action_space.sample() for _ in range(6)] + NASTY
        env.reset(seed=0)
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            assert obs in env.observation_space
            assert isinstance(reward, float) and math.isfinite(reward)
            assert isinstance(terminated, bool) and isinstance(truncated, bool)
            assert set(info) >= {"reward_components", "outcome", "success"}
            assert np.isclose(reward, _paid(env.unwrapped, info))
            if terminated or truncated:
                env.reset(seed=1)
    finally:
        env.close()
