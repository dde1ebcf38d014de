"""TextWorld-v0: generated games, walkthrough replays, determinism, rewards, junk input.

Games are cached in the default cache (``$AGENTGYM_CACHE/textworld`` or
``~/.cache/agentgym/textworld``), so only the first run pays for generating
them (about 1-4 s per game).
"""

from __future__ import annotations

import multiprocessing
import os

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.envs.textworld_env import (
    DIFFICULTIES,
    GameKnobs,
    TextWorld,
    clean_feedback,
    generate_game,
    parse_command,
)
from agentgym.errors import ConfigError
from agentgym.spaces import Chat, Utterance

pytest.importorskip("textworld")

ENV_ID = "agentgym/TextWorld-v0"
LADDER_SEEDS = (0, 1)


def cmd(c: str) -> str:
    return f"<command>{c}</command>"


@pytest.fixture(scope="module")
def env():
    """A level-2 env whose two games (seeds 0 and 1) are reused across tests."""
    e = TextWorld(difficulty=2)
    yield e
    e.close()


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<command>Go North</command>", "go north"),
        ("I think I should look.\n<command> open  the box </command>", "open the box"),
        ("take key\nthen something else", "take key"),
        ("\n\n  examine lamp  \n", "examine lamp"),
        ("go north. take key", "go north"),
        ("take apple then eat apple", "take apple"),
        ("open the non-euclidean box", "open the non-euclidean box"),
        ('take "key" {now}', "take key now"),
        ("x\x00y", "x y"),
        ("<command></command>", None),
        ("   \n ", None),
        ("", None),
        ("?!;", None),
        ("a" * 500, "a" * 100),
    ],
)
def test_parse_command(text, expected):
    assert parse_command(text) == expected


def test_clean_feedback_strips_interpreter_chrome():
    raw = (
        "\n   ____  __\n  |    \\|  \\\n   \\$$$$ | $$\n\nWelcome! Find the key.\n\n"
        "-= Attic =-\nA dusty attic.\n\n>                       -= Attic =-0/1"
    )
    assert clean_feedback(raw) == "Welcome! Find the key.\n\n-= Attic =-\nA dusty attic."
    end = "You win.\n\n    *** The End ***\n\nWould you like to RESTART, RESTORE or QUIT?\n>  "
    assert clean_feedback(end) == "You win.\n\n*** The End ***"
    assert clean_feedback("\n\n>     ") == "(no response)"


# ------------------------------------------------------------- the games
@pytest.mark.parametrize("difficulty", sorted(DIFFICULTIES))
def test_walkthrough_wins_every_game(difficulty):
    env = TextWorld(difficulty=difficulty)
    knobs = DIFFICULTIES[difficulty]
    try:
        for seed in LADDER_SEEDS:
            obs, info = env.reset(options={"task": seed})
            assert info["game_seed"] == seed
            assert f"-{knobs.key}-s{seed}" in info["game_file"]
            walkthrough = info["walkthrough"]
            assert len(walkthrough) >= knobs.quest_length
            total: dict[str, float] = {}
            for i, c in enumerate(walkthrough):
                obs, reward, terminated, truncated, step_info = env.step(cmd(c))
                for k, v in step_info["reward_components"].items():
                    total[k] = total.get(k, 0.0) + v
                assert not truncated
                assert terminated == (i == len(walkthrough) - 1), (seed, c)
            assert step_info["success"] and step_info["outcome"] == 1.0
            assert step_info["won"] and step_info["score"] == step_info["max_score"]
            assert total["score"] == pytest.approx(1.0)
            assert total["progress"] == pytest.approx(1.0)
            assert total["outcome"] == 1.0 and total["format"] == 0.0
            assert "You won!" in obs[0]["content"]
    finally:
        env.close()


def test_reset_observation_shape(env):
    obs, info = env.reset(options={"task": 0})
    assert obs in Chat()
    assert [m["role"] for m in obs] == ["system", "user"]
    assert "<command>" in obs[0]["content"]
    intro = obs[1]["content"]
    assert info["objective"] and info["objective"][:40] in intro
    assert "$$" not in intro and "=-0/" not in intro  # no banner, no status bar
    assert "Admissible commands" not in intro
    assert info["score"] == 0 and info["max_score"] >= 1


def test_same_seed_same_game_and_observations():
    """Two fresh envs, same seed and actions: identical observations, rewards, infos."""
    runs = []
    for _ in range(2):
        e = TextWorld(difficulty=2, n_games=2)
        try:
            obs, info = e.reset(seed=11)
            trace = [obs, info["game_file"]]
            for c in ["look", "inventory", "xyzzy", *info["walkthrough"]]:
                o, r, term, trunc, i = e.step(cmd(c))
                trace.append((o, r, term, i))
            runs.append(trace)
        finally:
            e.close()
    assert runs[0] == runs[1]
    assert runs[0][-1][2] is True  # the walkthrough ended the game


def test_seed_picks_game_and_task_overrides_seed(env):
    seeds = {env.reset(seed=s)[1]["game_seed"] for s in (123, 456)}
    assert len(seeds) == 2  # unbounded pool: distinct draws
    a = env.reset(seed=3, options={"task": 1})
    b = env.reset(seed=99, options={"task": 1})
    assert a == b
    other = env.reset(options={"task": 0})[0]
    assert other[1]["content"] != a[0][1]["content"]


def test_n_games_bounds_the_pool():
    e = TextWorld(difficulty=2, n_games=2)
    try:
        assert {e.reset(seed=s)[1]["game_seed"] for s in range(8)} == {0, 1}
    finally:
        e.close()


def test_task_path_plays_that_game(env):
    _, info = env.reset(options={"task": 0})
    obs_seed = env.reset(options={"task": 0})[0]
    obs_path, info_path = env.reset(options={"task": info["game_file"]})
    assert obs_path == obs_seed and info_path["game_seed"] is None
    assert info_path["walkthrough"] == info["walkthrough"]


@pytest.mark.parametrize("shaping", ["dense", "gated"])
def test_score_reward_and_progress_weight(shaping):
    e = TextWorld(difficulty=2, reward_weights={"progress": 0.5}, shaping=shaping)
    try:
        _, info = e.reset(options={"task": 1})
        walk = info["walkthrough"]
        first = e.step(cmd(walk[0]))
        parts = first[4]["reward_components"]
        assert parts["progress"] == pytest.approx(1 / len(walk))
        process = 0.5 * parts["progress"] + parts["score"]
        assert first[1] == pytest.approx(process if shaping == "dense" else 0.0)
        for c in walk[1:-1]:
            e.step(cmd(c))
        _, last_r, *_, last_info = e.step(cmd(walk[-1]))
        parts = last_info["reward_components"]
        gained = last_info["score"] / last_info["max_score"]
        assert parts["score"] == pytest.approx(gained) and parts["outcome"] == 1.0
        if shaping == "gated":  # the whole score (1) and progress (1 x 0.5) paid with the win
            assert last_r == pytest.approx(1.0 + 1.0 + 0.5)
        after = e.step(cmd("look"))
        assert after[2] is True and after[1] == 0.0 and "game is over" in after[0][0]["content"]
    finally:
        e.close()


def test_admissible_hint_lists_commands():
    e = TextWorld(difficulty=2, admissible_hint=True)
    try:
        obs, info = e.reset(options={"task": 0})
        listed = obs[1]["content"].split("Admissible commands: ")[1]
        assert listed.split(", ") == info["admissible_commands"]
        assert info["walkthrough"][0] in info["admissible_commands"]
        o, *_, i = e.step(cmd(info["walkthrough"][0]))
        assert o[0]["content"].endswith(", ".join(i["admissible_commands"]))
    finally:
        e.close()


JUNK = [
    "",
    "   ",
    "\x00\x01\x02",
    "<>{}\"'",
    "é ü 中文 🙂",
    "x" * 5000,
    "<command>",
    "<command>quit</command>",
    "restart",
    "save",
    "undo",
    "take all then drop all",
    "north. south. east",
    "go to the moon",
    "\\",
]


def test_junk_commands_never_raise(env):
    obs, info = env.reset(options={"task": 0})
    space = Utterance(seed=0)
    actions = JUNK + [space.sample() for _ in range(40)]
    for a in actions:
        o, r, term, trunc, i = env.step(a)
        assert o in Chat() and o[0]["content"].strip()
        assert not term and not trunc
        if parse_command(a) is None:
            assert i["reward_components"]["format"] == -0.1 and r == pytest.approx(-0.1)
    # meta commands are refused without reaching the interpreter
    o, *_ = env.step("quit")
    assert "not available" in o[0]["content"]
    # the game still works and can be won after all that
    _, info = env.reset(options={"task": 0})
    for c in info["walkthrough"]:
        *_, last = env.step(cmd(c))
    assert last["success"]


# -------------------------------------------------------- cache and errors
def _gen_in(cache: str) -> str:
    return str(generate_game(5, GameKnobs(1, 2, 1), cache))


def test_cache_is_atomic_under_concurrent_generation(tmp_path):
    cache = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        paths = pool.map(_gen_in, [cache, cache])
    assert paths[0] == paths[1]
    assert os.listdir(cache) == [os.path.basename(os.path.dirname(paths[0]))]  # no temp left
    mtime = os.stat(paths[0]).st_mtime_ns
    assert _gen_in(cache) == paths[0] and os.stat(paths[0]).st_mtime_ns == mtime  # reused
    e = TextWorld(difficulty=1, cache_dir=cache)
    try:
        _, info = e.reset(options={"task": 5})
        assert info["game_file"] == paths[0]
    finally:
        e.close()


def test_bad_configuration_raises():
    with pytest.raises(ConfigError, match="difficulty must be one of"):
        TextWorld(difficulty=9)
    with pytest.raises(ConfigError, match="n_games"):
        TextWorld(n_games=0)
    with pytest.raises(ConfigError, match="nb_rooms"):
        TextWorld(nb_rooms=0)


def test_bad_task_and_step_before_reset():
    e = TextWorld(difficulty=1)
    try:
        with pytest.raises(gymnasium.error.ResetNeeded):
            e.step("look")
        with pytest.raises(ConfigError, match="no game file"):
            e.reset(options={"task": "/nonexistent/game.z8"})
        with pytest.raises(ConfigError, match="game seed"):
            e.reset(options={"task": 1.5})
    finally:
        e.close()


def test_registered_time_limit_and_check_env():
    assert agentgym.spec(ENV_ID).max_episode_steps == 40
    e = agentgym.make(ENV_ID, difficulty=1, n_games=2, max_turns=2)
    try:
        e.reset(seed=0)
        assert e.step("look")[3] is False
        assert e.step("look")[3] is True  # TimeLimit truncates; the env never does
        check_env(e.unwrapped, skip_render_check=True)
    finally:
        e.close()
