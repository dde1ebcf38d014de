"""turn_grpo: per-turn returns-to-go normalised within the group at each turn index."""

from __future__ import annotations

import math

import numpy as np

from agentgym.rl import advantages
from agentgym.rl.advantages import TurnGRPO, compute_advantages
from agentgym.trajectory import Trajectory, Turn


def _episode(group: str, rewards: list[float], status: str = "done") -> Trajectory:
    t = Trajectory(env_id="x/Y-v0", group_id=group, status=status)  # type: ignore[arg-type]
    # every observation differs: GiGPO would find no shared state here
    t.turns = [
        Turn(action=f"a{k}", observation=[{"role": "tool", "content": f"{k}{r}"}], reward=r)
        for k, r in enumerate(rewards)
    ]
    return t


def test_turn_grpo_by_hand_credits_each_turn_against_the_same_turn_of_the_group():
    # One group of three: a call turn (found: 1 or 0), then an answer turn.
    #   e0: call right (1), answer right (1)  -> returns-to-go (gamma 1) [2, 1]
    #   e1: call wrong (0), answer right (1)  ->                         [1, 1]
    #   e2: call right (1), answer wrong (0)  ->                         [1, 0]
    # Turn 0 returns [2, 1, 1]: mean 4/3, sample std sqrt(1/3).
    # Turn 1 returns [1, 1, 0]: mean 2/3, sample std sqrt(1/3).
    trajs = [_episode("g", [1.0, 1.0]), _episode("g", [0.0, 1.0]), _episode("g", [1.0, 0.0])]
    gids = np.array(["g"] * 3)
    out = TurnGRPO(gamma=1.0).turn_advantages(trajs, np.array([2.0, 1.0, 1.0]), gids)
    s = math.sqrt(1 / 3)
    np.testing.assert_allclose(out[0], [(2 - 4 / 3) / s, (1 - 2 / 3) / s], rtol=1e-5)
    np.testing.assert_allclose(out[1], [(1 - 4 / 3) / s, (1 - 2 / 3) / s], rtol=1e-5)
    np.testing.assert_allclose(out[2], [(1 - 4 / 3) / s, (0 - 2 / 3) / s], rtol=1e-5)
    # gamma 0: each turn is judged by its own reward; the right call of e2 is credited
    # although its answer failed.
    out0 = TurnGRPO(gamma=0.0).turn_advantages(trajs, np.array([2.0, 1.0, 1.0]), gids)
    np.testing.assert_allclose([x[0] for x in out0], [1 / 3 / s, -2 / 3 / s, 1 / 3 / s], rtol=1e-5)
    by_name, _ = compute_advantages("turn_grpo_immediate", trajs)
    np.testing.assert_allclose(np.concatenate(by_name), np.concatenate(out0))


def test_turn_grpo_is_registered_and_handles_ragged_groups_and_unscorable_members():
    assert {"turn_grpo", "turn_grpo_immediate"} <= set(advantages.available())
    short = _episode("g", [1.0])  # ended after one turn: not in the turn-1 comparison
    a = _episode("g", [0.0, 1.0])
    b = _episode("g", [0.0, 0.0])
    lost = _episode("g", [5.0, 5.0], status="infra_error")  # no score: no baseline
    lone = _episode("h", [1.0, 1.0])  # a group of one: no signal
    per_turn, stats = compute_advantages("turn_grpo", [short, a, b, lost, lone])
    assert [len(x) for x in per_turn] == [1, 2, 2, 2, 2]
    # turn 0 returns (gamma 1) among short, a, b: [1, 1, 0] -> mean 2/3, std sqrt(1/3)
    s = math.sqrt(1 / 3)
    np.testing.assert_allclose(
        [per_turn[0][0], per_turn[1][0], per_turn[2][0]],
        [1 / 3 / s, 1 / 3 / s, -2 / 3 / s],
        rtol=1e-5,
    )
    # turn 1 among a, b only: returns [1, 0] -> +-1/sqrt(.5)
    np.testing.assert_allclose([per_turn[1][1], per_turn[2][1]], [0.5**0.5, -(0.5**0.5)], rtol=1e-5)
    np.testing.assert_allclose(per_turn[3], [0.0, 0.0])
    np.testing.assert_allclose(per_turn[4], [0.0, 0.0])
    assert stats.excluded == 1
