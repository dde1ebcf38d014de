from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

import agentgym

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_tool_env.py"
GUIDE = ROOT / "docs" / "custom_env.md"


@pytest.fixture(scope="module")
def example():
    return runpy.run_path(str(EXAMPLE))  # registers example/Inventory-v0


def test_example_is_short_and_quoted_verbatim_in_the_guide():
    code = EXAMPLE.read_text(encoding="utf-8")
    assert len(code.splitlines()) < 40
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert code in blocks


def test_example_plays_an_episode(example):
    env = agentgym.make("example/Inventory-v0")
    assert env.spec.max_episode_steps == 5
    obs, info = env.reset(seed=0)
    assert obs[0]["role"] == "system" and "a whole number" in obs[0]["content"]
    schema = info["tool_schemas"][0]["function"]
    assert schema["parameters"]["properties"]["item"]["enum"] == [
        "apples",
        "pears",
        "plums",
        "figs",
    ]
    a, b = re.search(r"How many (\w+) and (\w+) are in stock", obs[1]["content"]).groups()
    calls = "".join(
        f"<tool_call>{json.dumps({'name': 'stock', 'arguments': {'item': x}})}</tool_call>"
        for x in (a, b)
    )
    results, r, term, trunc, step_info = env.step(calls)
    assert [m["role"] for m in results] == ["tool", "tool"] and not term
    assert r == 0.0 and step_info["shaping_deferred"] == pytest.approx(0.07)  # gated
    total = sum(int(m["content"]) for m in results)
    assert total == example["STOCK"][a] + example["STOCK"][b]
    _, r, term, trunc, step_info = env.step(f"<answer>{total}</answer>")
    # the outcome, plus the tool turn's process rewards, paid now that it succeeded
    assert term and step_info["success"] and r == pytest.approx(1.07)
    env.reset(seed=0)
    bad = '<tool_call>{"name": "stock", "arguments": {"item": "kiwis"}}</tool_call>'
    obs, *_ = env.step(bad)
    assert 'must be one of ["apples", "pears", "plums", "figs"]' in obs[0]["content"]


def test_example_passes_check_env(example):
    check_env(example["Inventory"](), skip_render_check=True)
