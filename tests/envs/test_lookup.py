"""agentgym/Lookup-v0: the answer is only reachable through the lookup tool."""

from __future__ import annotations

import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.envs.lookup import CODES, ITEMS, Lookup
from agentgym.errors import ConfigError

WEIGHTS = {"found": 1.0, "grounded": 1.0, "extra_call": 1.0}


def make(**kw):
    return agentgym.make("agentgym/Lookup-v0", **kw)


def test_lookup_then_answer_succeeds_and_the_table_changes_with_the_seed():
    env = make()
    tables = set()
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        inner = env.unwrapped
        assert obs[-1]["content"] == f"What is the code of item {inner.item}?"
        tables.add(tuple(inner.table.values()))
        obs, reward, term, trunc, info = env.step(Lookup.call(inner.item))
        code = inner.table[inner.item]
        assert obs[0]["role"] == "tool" and obs[0]["content"] == f"{inner.item}: {code}"
        assert not term
        obs, reward, term, trunc, info = env.step(Lookup.answer(code))
        assert term and info["success"] and info["outcome"] == 1.0
    assert len(tables) == 20  # codes are drawn per task


def test_same_seed_same_task_and_options_fix_the_item():
    a, b = make(), make()
    assert a.reset(seed=5)[0] == b.reset(seed=5)[0]
    assert a.unwrapped.table == b.unwrapped.table
    obs, _ = a.reset(seed=5, options={"item": "echo"})
    assert obs[-1]["content"].endswith("item echo?")
    with pytest.raises(ConfigError, match="options\\['item'\\]"):
        a.reset(seed=5, options={"item": "zulu"})


def test_shaping_is_off_by_default_and_each_component_fires_when_enabled():
    env = make()
    env.reset(seed=1)
    item = env.unwrapped.item
    _, r1, *_, info1 = env.step(Lookup.call(item))
    assert info1["reward_components"]["found"] == 1.0
    assert r1 == 0.0  # the ToolEnv base shaping is gated on success by default
    assert info1["shaping_deferred"] == pytest.approx(0.07)

    env = make(reward_weights=WEIGHTS)
    env.reset(seed=1)
    inner = env.unwrapped
    other = next(k for k in inner.items if k != inner.item)
    *_, info = env.step(Lookup.call(other))
    assert info["reward_components"]["found"] == 0.0
    *_, info = env.step(Lookup.call(inner.item))
    assert info["reward_components"]["found"] == 1.0
    assert info["reward_components"]["extra_call"] == -1.0
    _, r, term, _, info = env.step(Lookup.answer(inner.table[other]))
    assert term and info["reward_components"]["grounded"] == 1.0  # read, though wrong item
    assert not info["success"] or inner.table[other] == inner.table[inner.item]


def test_a_guess_without_lookup_is_penalised_as_ungrounded():
    env = make(reward_weights=WEIGHTS)
    env.reset(seed=2)
    _, reward, term, _, info = env.step(Lookup.answer("K17"))
    assert term and info["reward_components"]["grounded"] == -1.0


def test_bad_calls_are_observations_with_a_format_penalty():
    env = make()
    env.reset(seed=0)
    obs, reward, term, _, info = env.step('<tool_call>{"name": "lookup"</tool_call>')
    assert not term and info["reward_components"]["format"] < 0
    obs, reward, term, _, info = env.step(Lookup.call("zulu"))
    assert obs[0]["content"].startswith("Error:") and info["reward_components"]["tool_error"] < 0


def test_valid_actions_and_pieces():
    env = Lookup(num_items=4, num_codes=8)
    actions = env.valid_actions()
    assert set(actions) == {Lookup.call(k) for k in ITEMS[:4]} | {
        Lookup.answer(c) for c in CODES[:8]
    }
    calls = sum(a.startswith("<tool_call>") for a in actions)
    assert calls == len(actions) - calls  # a uniform pick is a call half the time
    pieces = env.action_pieces()
    text = Lookup.call("alpha")
    assert pieces[0] + "alpha" + pieces[1] == text


def test_short_prompt_and_bad_sizes():
    env = make(prompt="short")
    obs, _ = env.reset(seed=0)
    assert len(obs[0]["content"]) < 250 and Lookup.call("ITEM") in obs[0]["content"]
    with pytest.raises(ConfigError):
        Lookup(num_items=1)
    with pytest.raises(ConfigError):
        Lookup(prompt="long")


def test_check_env():
    check_env(make().unwrapped, skip_render_check=True)
