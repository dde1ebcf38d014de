import math

import numpy as np
import pytest

from agentgym.errors import ConfigError
from agentgym.rl import advantages
from agentgym.rl.advantages import compute_advantages, group_advantages, group_stats
from agentgym.trajectory import Trajectory, Turn


def test_registry_lists_builtins_and_rejects_unknown_with_suggestion():
    assert {"grpo", "dr_grpo", "rloo"} <= set(advantages.available())
    with pytest.raises(ConfigError, match="Did you mean 'grpo'"):
        advantages.get("grpoo")


def test_grpo_by_hand():
    # group a: rewards 1, 0, 0, 1 -> mean 0.5, sample std sqrt(1/3)=0.57735
    # group b: 2, 4 -> mean 3, std sqrt(2)=1.41421
    adv = group_advantages("grpo", [1, 0, 0, 1, 2, 4], ["a", "a", "a", "a", "b", "b"])
    s = math.sqrt(1 / 3)
    expected = [0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, -1 / math.sqrt(2), 1 / math.sqrt(2)]
    np.testing.assert_allclose(adv, expected, rtol=1e-5)


def test_dr_grpo_by_hand_has_no_std_division():
    adv = group_advantages("dr_grpo", [1, 0, 0, 1, 2, 4], ["a", "a", "a", "a", "b", "b"])
    np.testing.assert_allclose(adv, [0.5, -0.5, -0.5, 0.5, -1, 1])


def test_rloo_by_hand():
    # [3, 1, 2]: 3-(1+2)/2=1.5, 1-(3+2)/2=-1.5, 2-(3+1)/2=0
    adv = group_advantages("rloo", [3, 1, 2], [7, 7, 7])
    np.testing.assert_allclose(adv, [1.5, -1.5, 0.0])


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_all_equal_and_single_groups_get_zero_and_are_counted(name):
    rewards = [1.0, 1.0, 1.0, 0.0, 5.0, 2.0]
    groups = ["eq", "eq", "eq", "one", "mix", "mix"]
    adv = group_advantages(name, rewards, groups)
    assert np.all(adv[:4] == 0.0)
    assert adv[4] > 0 > adv[5]
    stats = group_stats(rewards, groups)
    assert (stats.groups, stats.zero_signal_groups, stats.excluded) == (3, 2, 0)
    assert stats.zero_signal_fraction == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_nan_rewards_are_excluded_from_the_baseline_not_counted_as_zero(name):
    with_nan = group_advantages(name, [1.0, 0.0, float("nan"), 0.5], ["g"] * 4)
    without = group_advantages(name, [1.0, 0.0, 0.5], ["g"] * 3)
    assert with_nan[2] == 0.0
    np.testing.assert_allclose(with_nan[[0, 1, 3]], without)
    assert group_stats([1.0, float("nan")], ["g", "g"]).excluded == 1


def test_register_custom_estimator_and_shape_errors():
    @advantages.register("test_sign")
    def sign(rewards, group_ids):
        return np.sign(rewards)

    np.testing.assert_allclose(group_advantages("test_sign", [-2, 3], [0, 0]), [-1, 1])
    with pytest.raises(ConfigError, match="already registered"):
        advantages.register("test_sign")(lambda r, g: r)
    with pytest.raises(ConfigError, match="same shape"):
        group_advantages("grpo", [1, 2, 3], [0, 0])


def _traj(group, reward, status="done", outcome=None):
    t = Trajectory(env_id="x/Y-v0", group_id=group, status=status, outcome=outcome)
    t.turns.append(Turn(action="a", observation=[], reward=reward))
    return t


def test_compute_advantages_on_trajectories_skips_infra_errors():
    trajs = [_traj("g", 1.0), _traj("g", 0.0), _traj("g", 0.0, status="infra_error")]
    adv, stats = compute_advantages("rloo", trajs)
    np.testing.assert_allclose(np.concatenate(adv), [1.0, -1.0, 0.0])
    assert stats.excluded == 1
    adv_outcome, _ = compute_advantages(
        "dr_grpo", [_traj("g", 9.0, outcome=1.0), _traj("g", 0.0, outcome=0.0)], source="outcome"
    )
    np.testing.assert_allclose(np.concatenate(adv_outcome), [0.5, -0.5])


def _multi(group, steps):
    """steps: [(state_text, action, reward)] -> trajectory."""
    t = Trajectory(
        env_id="x/Y-v0",
        group_id=group,
        status="done",
        initial_observation=[{"role": "user", "content": steps[0][0]}],
    )
    for k, (_, action, reward) in enumerate(steps):
        nxt = steps[k + 1][0] if k + 1 < len(steps) else "end"
        t.turns.append(
            Turn(action=action, observation=[{"role": "user", "content": nxt}], reward=reward)
        )
    return t


def test_turn_returns_are_discounted_returns_to_go():
    t = _multi("g", [("s0", "a", 0.0), ("s1", "b", 0.0), ("s2", "c", 1.0)])
    np.testing.assert_allclose(advantages.turn_returns(t, 0.5), [0.25, 0.5, 1.0])


def test_gigpo_by_hand_credits_the_action_taken_in_a_shared_state():
    # Both episodes pass through state "A" (first turn, same action) and "B"; at B one
    # went right (return 1) and one went wrong (return 0). gamma=1, step_weight=1.
    good = _multi("g", [("A", "x", 0.0), ("B", "right", 1.0)])
    bad = _multi("g", [("A", "x", 0.0), ("B", "wrong", 0.0)])
    lone = _multi("g", [("C", "y", 0.0)])
    est = advantages.GiGPO(step_weight=1.0, gamma=1.0)
    rewards = np.array([1.0, 0.0, 0.0])
    out = est.turn_advantages([good, bad, lone], rewards, np.array(["g", "g", "g"]))
    ep = group_advantages("grpo", rewards, ["g"] * 3)  # [2/sqrt(3), -1/sqrt(3), -1/sqrt(3)]
    step = 1 / math.sqrt(0.5)  # returns [1, 0]: mean .5, sample std sqrt(.5)
    # state A: returns-to-go 1 and 0 too (gamma 1): same step term as B
    np.testing.assert_allclose(out[0], [ep[0] + 0.5 * step, ep[0] + 0.5 * step], rtol=1e-5)
    np.testing.assert_allclose(out[1], [ep[1] - 0.5 * step, ep[1] - 0.5 * step], rtol=1e-5)
    np.testing.assert_allclose(out[2], [ep[2]])  # a state seen once gets no step term
    per_turn, _ = compute_advantages("gigpo", [good, bad, lone])
    assert [len(a) for a in per_turn] == [2, 2, 1]


def test_gigpo_groups_by_the_env_reported_state_not_the_message_text():
    # Two episodes reach the same cell by different moves, so the text they saw there
    # differs ("You moved right." / "You moved down."), but the env reports the same
    # info["state"]: one step group. Text-keyed, they would be two singletons.
    def episode(came_by, action, reward):
        t = _multi("g", [("start", came_by, 0.0), (f"moved {came_by}", action, reward)])
        t.turns[0].info["state"] = 5
        return t

    good, bad = episode("right", "down", 1.0), episode("down", "left", 0.0)
    est = advantages.GiGPO(step_weight=1.0, gamma=1.0)
    rewards, groups = np.array([1.0, 0.0]), np.array(["g", "g"])
    out = est.turn_advantages([good, bad], rewards, groups)
    ep = group_advantages("grpo", rewards, ["g"] * 2)
    step = 1 / math.sqrt(0.5)  # returns [1, 0] at the shared state
    assert out[1][1] - ep[1] == pytest.approx(-0.5 * step, rel=1e-5)
    assert out[0][1] - ep[0] == pytest.approx(0.5 * step, rel=1e-5)
    for t in (good, bad):
        del t.turns[0].info["state"]
    text_keyed = est.turn_advantages([good, bad], rewards, groups)
    # turn 0 (shared reset text) still gets its step term; turn 1 gets none
    np.testing.assert_allclose([a[1] for a in text_keyed], ep, rtol=1e-6)


def test_toytext_reports_the_game_state_in_info():
    import agentgym

    env = agentgym.make("agentgym/FrozenLake-v0")
    env.reset(seed=0)
    assert env.step("right")[4]["state"] == 1  # row 0, column 1 of the 4x4 map
    assert env.step("jump")[4]["state"] == 1  # a bad action leaves the state as it was
    assert env.step("down")[4]["state"] == 5
