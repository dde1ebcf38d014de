from __future__ import annotations

import math

import numpy as np
import pytest

import agentgym
from agentgym.envs.wordle import Wordle, load_words, score_guess
from agentgym.errors import ConfigError

# A small game whose information gains are easy to work out by hand.
SMALL = ["crane", "crate", "grate", "plate", "slate", "stale", "blink", "fuzzy"]


@pytest.mark.parametrize(
    ("guess", "secret", "marks"),
    [
        ("crane", "crane", "GGGGG"),
        ("speed", "abide", "--Y-Y"),  # two E guessed, one in the secret: only the first is Y
        ("llama", "hello", "YY---"),  # two L in both, none in place
        ("eerie", "there", "Y-Y-G"),  # the green E uses up one E; the first E takes the other
        ("geese", "eerie", "-GY-G"),  # secret has three E; greens first, then one Y left
        ("fuzzy", "crane", "-----"),
    ],
)
def test_score_guess_handles_repeated_letters(guess, secret, marks):
    assert score_guess(guess, secret) == marks


def test_shipped_word_lists():
    answers, allowed = load_words("wordle_answers.txt"), load_words("wordle_allowed.txt")
    assert len(answers) >= 500 and len(allowed) >= 5000
    assert len(set(answers)) == len(answers)
    assert set(answers) <= set(allowed)
    assert all(len(w) == 5 and w.isascii() and w.isalpha() and w.islower() for w in allowed)
    assert {"crane", "slate", "house"} <= set(answers)


@pytest.mark.parametrize("shaping", ["dense", "gated"])
def test_info_gain_rewards_by_hand(shaping):
    env = Wordle(answers=SMALL, shaping=shaping)
    env.reset(options={"word": "crane"})
    # fuzzy shares no letter with crane: 7 of the 8 answers remain (all but fuzzy).
    _, r1, t1, _, i1 = env.step("fuzzy")
    assert i1["candidates_left"] == 7
    g1 = math.log2(8 / 7) / 3
    assert i1["reward_components"]["info_gain"] == pytest.approx(g1)
    # plate -> --G-G: crate/grate would give --GGG, slate -GGGG, stale -YGYG, blink -G---.
    obs, r2, t2, _, i2 = env.step("plate")
    assert obs[0]["content"].splitlines()[1:3] == ["P L A T E", "- - G - G"]
    assert i2["candidates_left"] == 1
    g2 = math.log2(7) / 3
    assert i2["reward_components"]["info_gain"] == pytest.approx(g2)
    _, r3, t3, _, i3 = env.step("crane")
    assert i3["reward_components"] == {"info_gain": 0.0, "outcome": 1.0}
    assert (t1, t2, t3) == (False, False, True)
    assert i3["success"] is True and i3["outcome"] == 1.0
    # Over a solved game the information gains add up to exactly 1.
    assert g1 + g2 == pytest.approx(1.0)
    if shaping == "dense":  # paid guess by guess
        assert (r1, r2, r3) == pytest.approx((g1, g2, 1.0))
    else:  # paid with the word
        assert (r1, r2, r3) == pytest.approx((0.0, 0.0, 2.0))
        assert i2["shaping_deferred"] == pytest.approx(1.0) and i3["shaping_paid"] == 1.0


def test_a_failed_game_is_not_paid_its_information_gain():
    env = agentgym.make("agentgym/Wordle-v0")
    env.reset(options={"word": "house"})
    rewards, gains = [], 0.0
    for guess in ["crane", "slate", "crane", "pilot", "dusky", "fjord"]:
        obs, reward, terminated, truncated, info = env.step(guess)
        rewards.append(reward)
        gains += info["reward_components"]["info_gain"]
    assert truncated and not info["success"]
    assert gains > 0.5 and rewards == [0.0] * 6  # reported, never paid


def test_feedback_message_and_absent_letters():
    env = agentgym.make("agentgym/Wordle-v0")
    env.reset(options={"word": "abide"})
    obs, *_ = env.step("<guess>speed</guess>")
    lines = obs[0]["content"].splitlines()
    assert lines == ["Guess 1:", "S P E E D", "- - Y - Y", "Not in the word: P S"]
    obs, *_ = env.step("Crane.")
    assert obs[0]["content"].splitlines()[-1] == "Not in the word: C N P R S"


def test_solving_with_shipped_lists_sums_gain_to_one():
    env = agentgym.make("agentgym/Wordle-v0")
    env.reset(options={"word": "house"})
    total = 0.0
    for guess in ["crane", "moist", "house"]:
        obs, reward, terminated, truncated, info = env.step(guess)
        total += info["reward_components"]["info_gain"]
    assert terminated and not truncated and info["success"]
    assert total == pytest.approx(1.0)
    assert obs[0]["content"].splitlines()[-2:] == ["G G G G G", "Solved in 3 guesses!"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("cr4ne", "only the letters a-z"),
        ("cranes", "has 6 letters"),
        ("abcde", "not in the word list"),
        ("two words", "Expected one word"),
        ("", "Empty guess"),
        ("<guess>crane", "not closed"),
        ("crâne", "only the letters a-z"),
    ],
)
def test_invalid_guesses_are_rejected_without_revealing(text, reason):
    env = Wordle()
    env.reset(options={"word": "crane"})
    obs, reward, terminated, truncated, info = env.step(text)
    assert reason in obs[0]["content"]
    assert info["reward_components"] == {"format": -0.1} and reward == pytest.approx(-0.1)
    assert info["candidates_left"] == len(env.answers)
    assert not terminated and not truncated
    # The next valid guess gains exactly what it gains in a fresh game.
    fresh = Wordle()
    fresh.reset(options={"word": "crane"})
    assert env.step("slate")[1] == fresh.step("slate")[1]


def test_guess_parsing_tag_wins_and_case_is_ignored():
    env = Wordle()
    assert env.check_guess("I'd say <guess>CRANE</guess>.") == "crane"
    assert env.check_guess("hmm slate <guess>x</guess> <guess>pilot</guess>") == "pilot"
    assert env.check_guess(" 'Slate!' ") == "slate"


def test_turn_limit_counts_invalid_guesses():
    env = agentgym.make("agentgym/Wordle-v0")
    assert env.spec.max_episode_steps == 6
    env.reset(options={"word": "crane"})
    for i, guess in enumerate(["xx", "zzzzz", "slate", "pilot", "?", "mound"]):
        _, _, terminated, truncated, info = env.step(guess)
        assert not terminated and truncated == (i == 5)
    assert info["success"] is False and info["outcome"] == 0.0


def test_secret_follows_the_seed():
    env = agentgym.make("agentgym/Wordle-v0")
    secrets = []
    for seed in range(12):
        env.reset(seed=seed)
        secrets.append(env.unwrapped.secret)
        env.reset(seed=seed)
        assert env.unwrapped.secret == secrets[-1]
    assert len(set(secrets)) >= 8
    assert set(secrets) <= set(load_words("wordle_answers.txt"))


def test_options_pick_the_secret():
    env = Wordle()
    env.reset(options={"task": 0})
    assert env.secret == env.answers[0]
    env.reset(options={"word": "Zesty"})  # any 5 letters; need not be an answer
    assert env.secret == "zesty"
    with pytest.raises(ConfigError, match="5 letters"):
        env.reset(options={"word": "cat"})
    with pytest.raises(ConfigError, match="5-letter"):
        Wordle(answers=["toolong"])


def test_fuzzed_guesses_never_raise():
    env = agentgym.make("agentgym/Wordle-v0", max_turns=10_000)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyz <>/!?.\n") + ["é", "🙂", "文", "\x00"]
    texts = ["x" * 100_000, "<guess>" * 3000, "é" * 5, "ＣＲＡＮＥ"]
    texts += ["".join(rng.choice(alphabet, size=int(rng.integers(0, 12)))) for _ in range(200)]
    for text in texts:
        obs, reward, terminated, _, info = env.step(text)
        assert isinstance(obs[0]["content"], str) and len(obs[0]["content"]) < 1000
        if terminated:
            env.reset(seed=1)
