"""No registered env pays a farming policy more than a prompt failure.

The farming policies (repeat one valid action, repeat one valid tool call, loop
without ending, stall until the turn limit, do most of the task and stop) and
each env's prompt failure are defined in ``tests/envs/farming.py``; its module
docstring says precisely what a prompt failure is in each env. Every built-in
env's prompt-failure return is 0, so: a farming episode that does not succeed
earns at most 0. The explicit ``shaping="dense"`` opt-in stays farmable, as
documented, and the last tests show it.
"""

from __future__ import annotations

import pytest

import agentgym
from agentgym.errors import DependencyMissing
from tests.envs.farming import (
    BOOK,
    PROMPT_FAILURE,
    PROMPT_FAILURE_RETURN,
    Episode,
    episodes,
    mean_return,
)

ENV_IDS = [e for e in agentgym.list_envs() if not e.startswith("test/")]
CASES = [(env_id, name) for env_id in ENV_IDS for name in BOOK.get(env_id, {"(none)": None})]
SEEDS = range(5)
EPS = 1e-9


def _episodes(env_id: str, name: str, seeds=SEEDS, **kwargs) -> list[Episode]:
    if env_id not in BOOK:
        if env_id.startswith("agentgym/"):
            pytest.fail(f"built-in env {env_id} has no farming policies in tests/envs/farming.py")
        pytest.skip(f"plugin env {env_id}: no farming policies known")
    try:
        return episodes(env_id, BOOK[env_id][name], seeds, **kwargs)
    except DependencyMissing as e:
        pytest.skip(str(e))


def test_every_builtin_env_has_farming_policies():
    builtin = [e for e in ENV_IDS if e.startswith("agentgym/")]
    assert set(builtin) <= set(BOOK), sorted(set(builtin) - set(BOOK))


@pytest.mark.parametrize(("env_id", "name"), CASES)
def test_farming_never_beats_a_prompt_failure(env_id, name):
    seeds = range(2) if env_id == "agentgym/Code-v0" else SEEDS  # a sandbox run per turn
    eps = _episodes(env_id, name, seeds)
    failed = [e for e in eps if not e.success]
    assert failed, f"{name} solved every episode of {env_id}: not a farming policy"
    for e in failed:
        assert e.total <= PROMPT_FAILURE_RETURN + EPS, (env_id, name, e)


@pytest.mark.parametrize("env_id", sorted(PROMPT_FAILURE))
def test_prompt_failure_fails_at_once_and_earns_its_return(env_id):
    eps = episodes(env_id, PROMPT_FAILURE[env_id], SEEDS)
    for e in eps:
        assert not e.success and e.outcome == 0.0
        assert e.total == pytest.approx(PROMPT_FAILURE_RETURN)
    if env_id != "agentgym/FrozenLake-v0":  # FrozenLake walks to its nearest hole
        assert {e.turns for e in eps} == {1}


# ------------------------------------------------- the opt-in stays farmable
@pytest.mark.parametrize(
    ("env_id", "expected"),
    [("agentgym/SearchQA-v0", 0.70), ("agentgym/MathTools-v0", 0.56), ("agentgym/SQL-v0", 0.72)],
)
def test_dense_tool_shaping_is_farmable_as_documented(env_id, expected):
    # the turn limit x (+0.02 well_formed + 0.05 tool_ok), +0.02 valid_sql in SQL
    mean, wins = mean_return(env_id, BOOK[env_id]["repeat_tool_call"], SEEDS, shaping="dense")
    assert wins == 0 and mean == pytest.approx(expected)
    gated, _ = mean_return(env_id, BOOK[env_id]["repeat_tool_call"], SEEDS)
    assert gated == 0.0


def test_dense_info_gain_is_farmable_as_documented():
    mean, wins = mean_return("agentgym/Wordle-v0", BOOK["agentgym/Wordle-v0"]["loop"], SEEDS)
    assert wins == 0 and mean == 0.0
    mean, _ = mean_return(
        "agentgym/Wordle-v0", BOOK["agentgym/Wordle-v0"]["loop"], SEEDS, shaping="dense"
    )
    assert mean > 0.5


def test_dense_progress_is_farmable_through_the_turn_limit():
    lake = "agentgym/FrozenLake-v0"
    policy = BOOK[lake]["near_goal_loop"]
    weights = {"progress": 1.0}
    dense = episodes(lake, policy, SEEDS, reward_weights=weights, shaping="dense")
    # 5 moves to G's neighbour, then 15 back-and-forth moves ending one step back,
    # 2 of the 6 moves from S short of G: 4/6 of the progress, never reaching G
    assert all(not e.success and e.total == pytest.approx(4 / 6) for e in dense)
    gated = episodes(lake, policy, SEEDS, reward_weights=weights)
    assert all(e.total == 0.0 for e in gated)


def test_countdown_partial_credit_is_an_opt_in_that_near_misses_collect():
    cd = "agentgym/Countdown-v0"
    mean, wins = mean_return(cd, BOOK[cd]["near_miss"], SEEDS, partial_credit=0.5)
    assert wins == 0 and mean > 0.1
    assert mean_return(cd, BOOK[cd]["near_miss"], SEEDS) == (0.0, 0)


# ----------------------------------------------------------- Code (issue-9a's env)
_DOUBLE = {
    "task_id": "farm/double",
    "prompt": "def double(x):\n    '''Twice x.'''\n",
    "entry_point": "double",
    "test": "def check(candidate):\n    assert candidate(0) == 0\n    assert candidate(2) == 4\n",
}


def test_code_partial_pass_is_not_paid_to_a_failed_episode():
    env = agentgym.make("agentgym/Code-v0")
    try:
        env.reset(seed=0, options={"task": _DOUBLE})
        total, info, done = 0.0, {}, False
        while not done:  # passes test_1 (double(0) == 0), fails test_2, every turn
            _, r, term, trunc, info = env.step("```python\ndef double(x):\n    return 0\n```")
            total, done = total + r, term or trunc
        assert not info["success"] and total <= PROMPT_FAILURE_RETURN + EPS
    finally:
        env.close()
