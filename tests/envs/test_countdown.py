from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import agentgym
from agentgym.envs.countdown import Countdown, evaluate_expression, make_task, score
from agentgym.errors import ActionParseError, ConfigError

TASK = {"numbers": [25, 5, 4, 7], "target": 80}


@pytest.mark.parametrize(
    ("expr", "numbers", "value"),
    [
        ("(25 - 5) * 4", [25, 5, 4, 7], Fraction(80)),
        ("25 * 4 = 100", [25, 4], Fraction(100)),
        ("100 = 25*4", [25, 4], Fraction(100)),
        ("7 / 2 * 2", [7, 2, 2], Fraction(7)),  # exact rationals, not floats
        ("(1 + 1 / 2) * 4", [1, 1, 2, 4], Fraction(6)),
        ("7 / 3", [7, 3], Fraction(7, 3)),
        ("6 × 7 − 2 ÷ 2", [6, 7, 2, 2], Fraction(41)),
        ("  3+3 ", [3, 3, 3], Fraction(6)),
    ],
)
def test_evaluate_expression_exactly(expr, numbers, value):
    assert evaluate_expression(expr, numbers) == value


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("25 * 25", "25 is used 2 times but given only once"),
        ("25 + 6", "6 is not one of the numbers"),
        ("25 + 2.5", "2.5 is not one of the given numbers"),
        ("-5 + 25", "Signs"),
        ("5 ** 4", "Powers"),
        ("25 / (5 - 5)", "used 2 times"),
        ("abs(25)", "is not allowed"),
        ("__import__('os').system('x')", "is not allowed"),
        ("25 +", "Could not parse"),
        ("0x19", "plain decimal digits"),
        ("1_0", "plain decimal digits"),
        ("", "empty"),
        ("(" * 150 + "25" + ")" * 150, "too long"),
        ("25 = 5 = 4", "Could not parse"),
    ],
)
def test_evaluate_expression_rejects_with_reason(expr, reason):
    with pytest.raises(ActionParseError, match=reason.replace("(", r"\(").replace("*", r"\*")):
        evaluate_expression(expr, [25, 5, 4, 7])


def test_division_by_zero_is_invalid():
    with pytest.raises(ActionParseError, match="Division by zero"):
        evaluate_expression("5 / (3 - 3)", [5, 3, 3])


def test_partial_credit_by_distance():
    assert score(Fraction(100), 100) == 1.0
    assert score(Fraction(99), 100, partial_credit=0.5) == pytest.approx(0.5 * 0.99)
    half = score(Fraction(201, 2), 100, partial_credit=0.5)
    assert half == pytest.approx(0.5 * (1 - 0.5 / 100))
    assert score(Fraction(200), 100, partial_credit=0.5) == 0.0
    assert score(Fraction(-5), 100, partial_credit=0.5) == 0.0
    assert score(Fraction(99), 100) == 0.0  # off by default


def test_exact_answer_wins():
    env = agentgym.make("agentgym/Countdown-v0")
    obs, info = env.reset(options={"task": TASK})
    assert obs[1]["content"] == "Numbers: 25 5 4 7\nTarget: 80"
    assert info == {"numbers": [25, 5, 4, 7], "target": 80}
    obs, reward, terminated, truncated, info = env.step("So <answer>(25 - 5) * 4</answer>")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["success"] is True and info["outcome"] == 1.0
    assert "Exactly the target" in obs[0]["content"]


def test_a_miss_scores_zero_and_ends():
    env = agentgym.make("agentgym/Countdown-v0")
    env.reset(options={"task": TASK})
    obs, reward, terminated, _, info = env.step("25 * 4")  # 100, off by 20 of 80
    assert reward == 0.0 and info["reward_components"] == {"outcome": 0.0}
    assert terminated and info["success"] is False
    assert "off by 20" in obs[0]["content"]


def test_partial_credit_is_an_opt_in_for_near_misses():
    env = agentgym.make("agentgym/Countdown-v0", partial_credit=0.5)
    env.reset(options={"task": TASK})
    obs, reward, terminated, _, info = env.step("25 * 4")
    assert reward == pytest.approx(0.5 * (1 - 20 / 80))
    assert info["reward_components"] == {"outcome": reward}
    assert terminated and info["success"] is False


def test_invalid_answer_allows_retry_then_truncates():
    env = agentgym.make("agentgym/Countdown-v0")
    assert env.spec.max_episode_steps == 3
    env.reset(options={"task": TASK})
    obs, reward, terminated, truncated, info = env.step("<answer>25 * 25</answer>")
    assert reward == pytest.approx(-0.1) and info["reward_components"] == {"format": -0.1}
    assert not terminated and not truncated
    assert "used 2 times" in obs[0]["content"] and "Try again" in obs[0]["content"]
    _, _, terminated, truncated, _ = env.step("banana")
    assert not terminated and not truncated
    _, _, terminated, truncated, info = env.step("<answer>(25 - 5")
    assert not terminated and truncated
    assert info["outcome"] == 0.0 and info["success"] is False


def test_retry_after_invalid_can_still_win():
    env = agentgym.make("agentgym/Countdown-v0")
    env.reset(options={"task": TASK})
    env.step("25 * 25")
    _, reward, terminated, truncated, info = env.step("(25-5)*4")
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)


def test_generated_tasks_are_solvable_and_follow_knobs():
    rng = np.random.default_rng(0)
    for _ in range(300):
        task = make_task(rng, (4, 6), (1, 25), (10, 250))
        assert 4 <= len(task.numbers) <= 6
        assert all(1 <= n <= 25 for n in task.numbers)
        assert 10 <= task.target <= 250 and task.target not in task.numbers
        assert evaluate_expression(task.solution, task.numbers) == task.target
    env = Countdown(num_numbers=3, number_range=(1, 10), target_range=(20, 40))
    for seed in range(30):
        env.reset(seed=seed)
        assert len(env.task.numbers) == 3 and 20 <= env.task.target <= 40
        assert env.step(env.solution)[1] == 1.0


def test_impossible_knobs_fail_at_construction():
    with pytest.raises(ConfigError, match="widen"):
        Countdown(num_numbers=2, number_range=(1, 1), target_range=(100, 200))
    with pytest.raises(ConfigError, match="num_numbers"):
        Countdown(num_numbers=(5, 3))
    with pytest.raises(ConfigError, match="partial_credit"):
        Countdown(partial_credit=1.5)
    with pytest.raises(ConfigError, match="numbers"):
        Countdown().reset(options={"task": {"target": 3}})


def test_task_follows_the_seed():
    env = agentgym.make("agentgym/Countdown-v0")
    tasks = []
    for seed in range(10):
        env.reset(seed=seed)
        tasks.append(env.unwrapped.task)
        env.reset(seed=seed)
        assert env.unwrapped.task == tasks[-1]
    assert len(set(tasks)) == len(tasks)


def test_fuzzed_answers_never_raise():
    env = agentgym.make("agentgym/Countdown-v0", max_turns=10_000)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    alphabet = list("0123456789+-*/()=. <>answer/x^") + ["é", "🙂", "÷", "\x00", "\n"]
    texts = ["9" * 100_000, "(" * 5000, "<answer>" * 3000, "1" + "+1" * 99, "1e999", "9" * 5000]
    texts += ["".join(rng.choice(alphabet, size=int(rng.integers(0, 40)))) for _ in range(300)]
    for text in texts:
        obs, reward, terminated, _, info = env.step(text)
        assert isinstance(obs[0]["content"], str) and len(obs[0]["content"]) < 1000
        if terminated:
            env.reset(seed=1)
