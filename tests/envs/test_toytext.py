from __future__ import annotations

from collections import deque

import numpy as np
import pytest

import agentgym
from agentgym.envs.toytext import Blackjack, FrozenLake, ToyText
from agentgym.errors import ActionParseError, ConfigError

FL = "agentgym/FrozenLake-v0"
# The 4x4 map: SFFF / FHFH / FFFH / HFFG; the shortest safe path.
FL_PATH = ["down", "down", "right", "right", "down", "right"]


def _fuzz_strings(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    alphabet = list("abcdefghijklmnopqrstuvwxyz <>/!?.,'\"\n\t") + [
        "é",
        "🙂",
        "文",
        "\u200b",
        "\x00",
    ]
    out = ["", "left" * 1000, "<action>" * 5000, "x" * 100_000, "</action><action>up"]
    for _ in range(n):
        k = int(rng.integers(0, 80))
        out.append("".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=k)))
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("left", "left"),
        ("  LEFT. ", "left"),
        ("**Right**", "right"),
        ('"up"', "up"),
        ("<action>down</action>", "down"),
        ("Left is bad, so <action> UP </action>", "up"),
        ("<action>left</action> no wait <ACTION>right</ACTION>", "right"),
    ],
)
def test_parse_action_accepts_words_and_tags(text, expected):
    env = FrozenLake()
    assert env.action_words[env.parse_action(text)] == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("jump", 'Unknown action "jump"'),
        ("go left", "Expected one word"),
        ("", "Empty action"),
        ("<action>up", "not closed"),
        ("<action>fly</action> left", 'Unknown action "fly"'),
    ],
)
def test_parse_action_rejects_with_reason_and_valid_list(text, reason):
    env = FrozenLake()
    with pytest.raises(ActionParseError) as e:
        env.parse_action(text)
    assert reason in str(e.value)
    assert "Valid actions: left, down, right or up." in str(e.value)


def test_frozenlake_optimal_path_wins_with_outcome_one():
    env = agentgym.make(FL)
    obs, info = env.reset(seed=0)
    assert "left, down, right or up" in obs[0]["content"]
    assert obs[1]["content"].splitlines()[:4] == ["P F F F", "F H F H", "F F F H", "H F F G"]
    rewards = []
    for i, word in enumerate(FL_PATH):
        obs, reward, terminated, truncated, info = env.step(word)
        rewards.append(reward)
        assert terminated == (i == len(FL_PATH) - 1) and not truncated
    assert rewards == [0.0] * 5 + [1.0]
    assert info["reward_components"] == {
        "env": 1.0,
        "progress": pytest.approx(1 / 6),
        "outcome": 1.0,
    }
    assert info["success"] is True and info["outcome"] == 1.0
    assert obs[0]["content"].splitlines()[3] == "H F F P"
    assert "reached the goal" in obs[0]["content"]


def test_dense_progress_is_potential_based_and_telescopes():
    env = FrozenLake(reward_weights={"progress": 1.0}, shaping="dense")
    env.reset(seed=0)
    rewards = [env.step(word)[1] for word in ["left", "right", "left"]]
    # A bump does nothing; right then left undo each other (distance 6 -> 5 -> 6).
    assert rewards == pytest.approx([0.0, 1 / 6, -1 / 6])
    env.reset(seed=0)
    rewards = [env.step(word)[1] for word in FL_PATH]
    assert rewards == pytest.approx([1 / 6] * 5 + [1 / 6 + 1.0])
    env.reset(seed=0)
    env.step("down")  # distance 6 -> 5
    _, reward, terminated, _, _ = env.step("right")  # the hole gives the progress back
    assert terminated and reward == pytest.approx(-1 / 6)


def test_gated_progress_is_paid_only_at_the_goal():
    env = FrozenLake(reward_weights={"progress": 1.0})
    env.reset(seed=0)
    steps = [env.step(word) for word in FL_PATH]
    assert [s[1] for s in steps] == pytest.approx([0.0] * 5 + [1.0 + 1.0])
    assert [s[4]["reward_components"]["progress"] for s in steps] == pytest.approx([1 / 6] * 6)
    env.reset(seed=0)
    assert [env.step(w)[1] for w in ["down", "down", "right"]] == [0.0, 0.0, 0.0]


def test_frozenlake_hole_terminates_without_success():
    env = agentgym.make(FL)
    env.reset(seed=0)
    env.step("down")
    obs, reward, terminated, truncated, info = env.step("right")
    assert (terminated, truncated, reward) == (True, False, 0.0)
    assert info["outcome"] == 0.0 and info["success"] is False
    assert "fell into a hole" in obs[0]["content"]


def test_frozenlake_coordinates_state_the_cell_in_words():
    env = agentgym.make(FL, coordinates=True)
    obs, _ = env.reset(seed=0)
    assert obs[-1]["content"].endswith("You start at P. You are at row 1, column 1.")
    obs, *_ = env.step("down")
    assert obs[0]["content"].endswith("You are at row 2, column 1.")
    obs, *_ = env.step("left")  # into the edge: the cell does not change
    assert obs[0]["content"].endswith("You are at row 2, column 1.")
    obs, *_ = env.step("right")  # the hole at row 2, column 2: no position line
    assert obs[0]["content"].endswith("You fell into a hole. Game over.")
    plain, _ = agentgym.make(FL).reset(seed=0)
    assert "You are at" not in plain[-1]["content"]


def test_reward_weights_override_counts_env_reward():
    env = FrozenLake(reward_weights={"env": 1.0})
    env.reset(seed=0)
    for word in FL_PATH:
        _, reward, *_ = env.step(word)
    assert reward == 2.0


def test_invalid_action_penalised_and_state_unchanged():
    a, b = agentgym.make(FL), agentgym.make(FL)
    a.reset(seed=3)
    b.reset(seed=3)
    obs, reward, terminated, truncated, info = a.step("jump around")
    assert reward == pytest.approx(-0.1)
    assert info["reward_components"] == {"format": -0.1}
    assert not terminated and not truncated
    assert "Valid actions" in obs[0]["content"]
    assert a.step("down")[:3] == b.step("down")[:3]


def test_bumping_the_edge_is_reported():
    env = FrozenLake()
    env.reset(seed=0)
    obs, *_ = env.step("up")
    assert obs[0]["content"].splitlines()[0] == "P F F F"
    assert "did not move" in obs[0]["content"]


def test_turn_limit_truncates_frozenlake():
    env = agentgym.make(FL)
    limit = env.spec.max_episode_steps
    env.reset(seed=0)
    for i in range(limit):
        _, _, terminated, truncated, info = env.step("left")
        assert not terminated
        assert truncated == (i == limit - 1)
    assert info["outcome"] == 0.0 and info["success"] is False


def test_random_maps_follow_the_seed():
    env = FrozenLake(random_map_size=5)
    maps = {}
    for seed in range(6):
        env.reset(seed=seed)
        maps[seed] = env.board
        env.reset(seed=seed)
        assert env.board == maps[seed]
        assert len(env.board) == 5 and env.board[0][0] == "S" and env.board[-1][-1] == "G"
    assert len({tuple(m) for m in maps.values()}) > 1


def test_slippery_lake_is_deterministic_given_seed():
    def play():
        env = FrozenLake(is_slippery=True)
        out = [env.reset(seed=11)[0]]
        for _ in range(8):
            obs, reward, terminated, _, _ = env.step("right")
            out.append((obs, reward))
            if terminated:
                break
        return out

    assert play() == play()


def _plan(game, start: int, goal) -> list[int]:
    """Breadth-first search over Gymnasium's own transition table P."""
    prev = {start: None}
    queue = deque([start])
    while queue:
        s = queue.popleft()
        for a, outcomes in game.P[s].items():
            _, s2, _, done = outcomes[0]
            if done and goal(s2):
                path = [a]
                while prev[s] is not None:
                    s, a = prev[s]
                    path.append(a)
                return path[::-1]
            if s2 not in prev and not done:
                prev[s2] = (s, a)
                queue.append(s2)
    raise AssertionError("no path")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_taxi_planned_delivery_rewards(seed):
    env = agentgym.make("agentgym/Taxi-v0")
    obs, _ = env.reset(seed=seed)
    assert "Passenger at" in obs[1]["content"]
    inner = env.unwrapped
    path = _plan(inner.game, inner.game.s, lambda s: True)
    rewards, texts = [], []
    for i, a in enumerate(path):
        obs, reward, terminated, truncated, info = env.step(inner.action_words[a])
        rewards.append(reward)
        texts.append(obs[0]["content"])
        assert terminated == (i == len(path) - 1)
    assert sum("picked up the passenger" in t for t in texts) == 1
    moves = [t.splitlines()[-1] for t in texts[:-1] if "passenger" not in t.splitlines()[-1]]
    assert moves and all(m.startswith("You drove ") for m in moves)
    # Each move/pickup costs -1 x 0.02; the delivery pays 20 x 0.02 plus outcome 1.
    assert rewards[:-1] == pytest.approx([-0.02] * (len(path) - 1))
    assert rewards[-1] == pytest.approx(20 * 0.02 + 1.0)
    assert info["success"] is True and info["outcome"] == 1.0
    assert "delivered" in obs[0]["content"]


def test_taxi_illegal_pickup_costs_env_penalty():
    env = agentgym.make("agentgym/Taxi-v0")
    inner = env.unwrapped
    for seed in range(20):  # a start where the taxi is not on the passenger's stop
        env.reset(seed=seed)
        row, col, passenger, _ = inner.game.decode(inner.game.s)
        if (row, col) != inner.game.locs[passenger]:
            break
    obs, reward, terminated, _, info = env.step("pickup")
    assert info["reward_components"] == {"env": -10.0}
    assert reward == pytest.approx(-0.2) and not terminated
    assert "no passenger to pick up" in obs[0]["content"]


def test_cliffwalking_safe_path_and_cliff():
    env = agentgym.make("agentgym/CliffWalking-v0")
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step("right")
    assert reward == pytest.approx(-1.0) and not terminated
    assert info["reward_components"] == {"env": -100.0}
    assert obs[0]["content"].splitlines()[3].startswith("P C")
    path = ["up"] + ["right"] * 11 + ["down"]
    for i, word in enumerate(path):
        obs, reward, terminated, truncated, info = env.step(word)
        assert terminated == (i == len(path) - 1)
    assert reward == pytest.approx(-0.01 + 1.0)
    assert info["success"] is True and info["outcome"] == 1.0


def _hand_total(cards: list[str]) -> int:
    values = [1 if c == "A" else int(c) for c in cards]
    total = sum(values)
    return total + 10 if 1 in values and total + 10 <= 21 else total


def test_blackjack_outcome_is_the_hand_result():
    seen = set()
    for seed in range(40):
        env = agentgym.make("agentgym/Blackjack-v0")
        obs, _ = env.reset(seed=seed)
        text = obs[1]["content"]
        cards = text.split("Your cards: ")[1].split(" (")[0].split()
        assert f"(total {_hand_total(cards)}" in text
        obs, reward, terminated, truncated, info = env.step("stick")
        assert terminated and not truncated
        parts = info["reward_components"]
        assert parts["outcome"] == parts["env"] == info["outcome"] == reward
        assert info["success"] == (reward > 0)
        assert "Dealer's cards" in obs[0]["content"]
        word = {1.0: "win", -1.0: "lose", 0.0: "Draw"}[reward]
        assert word in obs[0]["content"]
        seen.add(reward)
    assert {1.0, -1.0} <= seen


def test_blackjack_hitting_to_bust_loses():
    env = Blackjack()
    env.reset(seed=5)
    for _ in range(12):
        obs, reward, terminated, _, info = env.step("hit")
        if terminated:
            break
    assert terminated and reward == -1.0 and info["success"] is False
    assert "Bust" in obs[0]["content"]


@pytest.mark.parametrize(
    "env_id",
    [
        "agentgym/FrozenLake-v0",
        "agentgym/Taxi-v0",
        "agentgym/CliffWalking-v0",
        "agentgym/Blackjack-v0",
    ],
)
def test_fuzzed_actions_never_raise(env_id):
    env = agentgym.make(env_id, max_turns=10_000)
    env.reset(seed=0)
    for text in _fuzz_strings(150):
        obs, reward, terminated, truncated, info = env.step(text)
        assert isinstance(obs[0]["content"], str) and len(obs[0]["content"]) < 2000
        if "format" in info["reward_components"]:
            assert reward == pytest.approx(-0.1)
        if terminated:
            env.reset(seed=1)


def test_step_after_termination_does_not_move():
    env = FrozenLake()
    env.reset(seed=0)
    env.step("down")
    env.step("right")  # hole
    obs, reward, terminated, _, _ = env.step("left")
    assert terminated and reward == 0.0 and "reset()" in obs[0]["content"]


def test_generic_adapter_on_a_gymnasium_id():
    env = ToyText("FrozenLake-v1", ("w", "s", "e", "n"), env_kwargs={"is_slippery": False})
    obs, _ = env.reset(seed=0)
    assert obs[1]["content"].startswith("State: 0")
    obs, reward, *_ = env.step("S")
    assert obs[0]["content"].startswith("State: 4")


def test_generic_adapter_passes_check_env():
    from gymnasium.envs.toy_text.taxi import TaxiEnv
    from gymnasium.utils.env_checker import check_env

    check_env(ToyText(TaxiEnv, ("s", "n", "e", "w", "p", "d")), skip_render_check=True)
    check_env(FrozenLake(random_map_size=6, is_slippery=True), skip_render_check=True)


def test_generic_adapter_validates_spaces_and_words():
    with pytest.raises(ConfigError, match="name each of the 4 actions"):
        ToyText("FrozenLake-v1", ("left", "right"))
    with pytest.raises(ConfigError, match="Tuple-of-Discrete"):
        ToyText("CartPole-v1", ("push", "pull"))
    with pytest.raises(ConfigError, match="map_name"):
        FrozenLake(map_name="3x3")
