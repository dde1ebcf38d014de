"""ShapedEnv: process rewards reported every turn, paid only to episodes that succeed."""

from __future__ import annotations

import numpy as np
import pytest

import agentgym
from agentgym.core import system, user
from agentgym.envs.shaping import ShapedEnv
from agentgym.errors import ConfigError
from agentgym.rewards import RewardSpec


class Ladder(ShapedEnv):
    """Say "up" to climb (+0.1 process reward a rung); the top (3 rungs) wins; "fall" loses."""

    reward_spec = RewardSpec(
        {
            "rung": "+0.1 per rung climbed",
            "format": "-0.1 for anything but up or fall",
            "outcome": "1 at the top",
        }
    )
    process_components = frozenset({"rung"})

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.height = 0
        return self.begin([system("Climb."), user("Say up.")])

    def step(self, action):
        if action == "fall":
            return self.turn([], {"outcome": 0.0}, terminated=True, outcome=0.0, success=False)
        if action != "up":
            return self.turn([], {"format": -0.1})
        self.height += 1
        top = self.height == 3
        parts = {"rung": 0.1, "outcome": float(top)}
        return self.turn([], parts, terminated=top, outcome=float(top), success=top or None)


def _play(env, actions):
    env.reset(seed=0)
    return [env.step(a) for a in actions]


def test_gated_pays_process_rewards_on_success_only():
    steps = _play(Ladder(), ["up", "oops", "up", "up"])
    assert [s[1] for s in steps] == pytest.approx([0.0, -0.1, 0.0, 1.0 + 0.3])
    # raw components stay in info, turn by turn
    assert [s[4]["reward_components"].get("rung", 0.0) for s in steps] == [0.1, 0.0, 0.1, 0.1]
    assert [s[4]["shaping_paid"] for s in steps] == pytest.approx([0, 0, 0, 0.3])
    assert [s[4]["shaping_deferred"] for s in steps] == pytest.approx([0.1, 0.1, 0.2, 0.0])


def test_a_failed_episode_forfeits_them_whether_it_ends_or_is_cut():
    ended = _play(Ladder(), ["up", "up", "fall"])
    assert [s[1] for s in ended] == [0.0, 0.0, 0.0]
    assert ended[-1][4]["shaping_deferred"] == pytest.approx(0.2)  # shown, never paid
    agentgym.register("test/Ladder-v0", entry_point=Ladder, max_turns=2)
    env = agentgym.make("test/Ladder-v0")
    cut = _play(env, ["up", "up"])
    assert cut[-1][3] is True and sum(s[1] for s in cut) == 0.0
    # a new episode starts with nothing deferred
    again = _play(env, ["up"])
    assert again[0][4]["shaping_deferred"] == pytest.approx(0.1)


def test_dense_pays_every_turn_and_is_farmable():
    steps = _play(Ladder(shaping="dense"), ["up", "up", "fall"])
    assert [s[1] for s in steps] == pytest.approx([0.1, 0.1, 0.0])  # 0.2 for a failure
    assert [s[4]["shaping_paid"] for s in steps] == pytest.approx([0.1, 0.1, 0.0])


def test_cap_and_weights():
    assert _play(Ladder(shaping_cap=0.15), ["up"] * 3)[-1][1] == pytest.approx(1.15)
    weighted = _play(Ladder(reward_weights={"rung": 2.0}), ["up"] * 3)
    assert weighted[-1][1] == pytest.approx(1.6)
    assert weighted[-1][4]["reward_components"]["rung"] == 0.1  # raw, unweighted
    off = _play(Ladder(reward_weights={"rung": 0.0}), ["up"] * 3)
    assert off[-1][1] == pytest.approx(1.0)


def test_reward_is_the_other_components_plus_what_was_paid():
    env = Ladder()
    for _, reward, _, _, info in _play(env, ["up", "x", "up", "up"]):
        rest = {k: v for k, v in info["reward_components"].items() if k != "rung"}
        assert np.isclose(reward, env.rewards.combine(rest) + info["shaping_paid"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shaping": "sparse"}, "shaping must be one of"),
        ({"shaping_cap": -0.1}, "shaping_cap must be None or a finite number"),
        ({"shaping_cap": float("nan")}, "shaping_cap must be None or a finite number"),
    ],
)
def test_bad_settings_raise_at_construction(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Ladder(**kwargs)


def test_undeclared_process_component_raises():
    class Broken(Ladder):
        process_components = frozenset({"rung", "bonus"})

    with pytest.raises(ConfigError, match=r"names \['bonus'\]"):
        Broken()


@pytest.mark.parametrize(
    "env_id",
    [
        "agentgym/FrozenLake-v0",
        "agentgym/Wordle-v0",
        "agentgym/MathTools-v0",
        "agentgym/SearchQA-v0",
        "agentgym/SQL-v0",
    ],
)
def test_builtin_envs_take_the_shaping_switch(env_id):
    env = agentgym.make(env_id, shaping="dense")
    assert env.unwrapped.shaping == "dense"
    assert agentgym.make(env_id).unwrapped.shaping == "gated"
    with pytest.raises(ConfigError, match="shaping must be one of"):
        agentgym.make(env_id, shaping="off")
