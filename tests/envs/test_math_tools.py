from __future__ import annotations

import json
import re
from fractions import Fraction

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.envs.math_tools import MathTools, answers_match, evaluate, parse_number
from agentgym.errors import ConfigError, SandboxUnavailable, ToolError

ENV_ID = "agentgym/MathTools-v0"


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture
def env():
    e = MathTools(difficulty="medium", python_tool=False)
    yield e
    e.close()


# ------------------------------------------------------------- calculator
@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1/3 + 2^2", Fraction(13, 3)),
        ("0.1 + 0.2", Fraction(3, 10)),
        ("7 // 2 + 7 % 2", Fraction(4)),
        ("2**-2", Fraction(1, 4)),
        ("-(3 - 10) * 4 × 2 ÷ 7", Fraction(8)),
        ("abs(-5) + max(1, 2, 3/2) - min(4, 9)", Fraction(3)),
    ],
)
def test_calculator_exact(expr, value):
    assert evaluate(expr) == value


@pytest.mark.parametrize(
    ("expr", "msg"),
    [
        ("1/0", "division by zero"),
        ("2 ** 0.5", "integer exponents"),
        ("9 ** 9 ** 9", "too large"),
        ("__import__('os').system('x')", "unsupported syntax"),
        ("x + 1", "unsupported syntax"),
        ("(1 + ", "invalid expression"),
        ("1" * 400, "too long"),
        ("1e999 + 1", "too large"),
    ],
)
def test_calculator_rejects(expr, msg):
    with pytest.raises(ToolError, match=msg):
        evaluate(expr)


# ---------------------------------------------------------------- answers
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7/2", Fraction(7, 2)),
        (" 3.5 ", Fraction(7, 2)),
        ("3 1/2", Fraction(7, 2)),
        ("3½", Fraction(7, 2)),
        ("½", Fraction(1, 2)),
        ("-¾", Fraction(-3, 4)),
        ("\\frac{7}{2}", Fraction(7, 2)),
        ("\\boxed{-12}", Fraction(-12)),
        ("$1,234.50", Fraction(246900, 200)),
        ("-$4", Fraction(-4)),
        ("50%", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1e3", Fraction(1000)),
        ("42.", Fraction(42)),
        ("1/0", None),
        ("seven", None),
        ("1,23", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_answers_match_rounding_rule():
    assert answers_match("0.333", Fraction(1, 3))
    assert answers_match("0.6667", Fraction(2, 3))
    assert not answers_match("0.33", Fraction(1, 3))  # fewer than 3 places
    assert not answers_match("0.666", Fraction(2, 3))  # truncated, not rounded
    assert not answers_match("0.501", Fraction(1, 2))  # 1/2 has an exact decimal


# ------------------------------------------------------------------- env
def test_registered_and_check_env():
    env = agentgym.make(ENV_ID, difficulty="easy", python_tool=False)
    assert env.spec.max_episode_steps == 8
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_bad_difficulty_raises():
    with pytest.raises(ConfigError, match="difficulty must be one of"):
        MathTools(difficulty="expert")


def test_reset_is_deterministic_and_varies(env):
    a, _ = env.reset(seed=7)
    b, info = env.reset(seed=7)
    assert a == b
    assert a[0]["role"] == "system" and a[1]["role"] == "user"
    assert "<answer>" in a[0]["content"] and '"name": "calculator"' in a[0]["content"]
    assert [s["function"]["name"] for s in info["tool_schemas"]] == ["calculator"]
    questions = {env.reset(seed=s)[0][1]["content"] for s in range(12)}
    assert len(questions) >= 10


def test_task_option_independent_of_seed(env):
    a = env.reset(seed=1, options={"task": 5})[0]
    b = env.reset(seed=99, options={"task": 5})[0]
    assert a == b
    obs, _ = env.reset(options={"task": {"question": "What is 2+3?", "answer": "5"}})
    assert obs[1]["content"] == "What is 2+3?"
    assert env.step("<answer>5</answer>")[4]["success"]
    with pytest.raises(ConfigError):
        env.reset(options={"task": "five"})


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_scripted_solution_solves_every_problem(difficulty):
    env = MathTools(difficulty=difficulty, python_tool=False)
    for seed in range(15):
        obs, _ = env.reset(seed=seed)
        question = obs[1]["content"]
        m = re.match(r"Compute (.+)\. Give the exact value\.$", question)
        if m:  # arithmetic: ask the calculator, answer with its exact result
            out, r, term, trunc, info = env.step(call("calculator", expression=m.group(1)))
            assert out[0]["role"] == "tool" and out[0]["name"] == "calculator"
            assert info["reward_components"]["tool_ok"] == pytest.approx(0.05)
            assert r == 0.0 and not term  # process rewards wait for success
            answer = out[0]["content"].split(" ")[0]
            shaping = 0.07
        else:  # word problem: the gold in another accepted form
            gold = env.gold
            answer = str(gold) if gold.denominator != 1 else f"{gold.numerator}.0"
            shaping = 0.0
        _, r, term, trunc, info = env.step(f"So the result is <answer>{answer}</answer>")
        assert term and not trunc
        assert info["outcome"] == 1.0 and info["success"] is True, (seed, question, answer)
        assert info["reward_components"]["outcome"] == 1.0
        assert r == pytest.approx(1.0 + shaping) and info["shaping_paid"] == pytest.approx(shaping)
    env.close()


def test_wrong_answer_scores_zero(env):
    env.reset(seed=3)
    wrong = env.gold + 1
    _, r, term, _, info = env.step(f"<answer>{wrong}</answer>")
    assert term and r == 0.0 and info["outcome"] == 0.0 and info["success"] is False
    env.reset(seed=3)
    _, r, term, _, info = env.step("<answer>about ten</answer>")
    assert term and info["success"] is False


BAD = '{"name": "calculator", "arguments": {"expression": }}'


def test_malformed_calls_get_precise_messages(env):
    env.reset(seed=0)
    cases = [
        (f"<tool_call>{BAD}</tool_call>", "user",
         f"bad JSON in tool call #1: Expecting value at position {BAD.index('}')}"),
        (call("calc", expression="1+1"), "tool", "unknown tool 'calc' (valid: calculator)"),
        (call("calculator"), "tool", "missing required argument 'expression'"),
        (call("calculator", expression=5), "tool", "argument 'expression' must be string"),
        (call("calculator", expression="1", base=2), "tool", "unknown argument 'base'"),
        ("I think it is 5", "user", "No tool call or final answer found"),
        ("<answer>5", "user", "unclosed <answer> tag"),
        (call("calculator", expression="1") + "<answer>2</answer>", "user", "not both"),
    ]  # fmt: skip
    for action, role, text in cases:
        obs, r, term, trunc, info = env.step(action)
        assert obs[0]["role"] == role and text in obs[0]["content"], (action, obs)
        assert info["reward_components"]["format"] == -0.1 and r == pytest.approx(-0.1)
        assert not term and not trunc


def test_tool_failure_and_mixed_turn_rewards(env):
    env.reset(seed=0)
    action = call("calculator", expression="1/0") + call("calculator", expression="6*7")
    obs, r, _, _, info = env.step(action)
    assert [m["content"] for m in obs] == ["Error: division by zero", "42"]
    assert [m["tool_call_id"] for m in obs] == ["call_1_0", "call_1_1"]
    parts = info["reward_components"]
    assert parts == pytest.approx(
        {"format": 0.0, "well_formed": 0.02, "tool_ok": 0.025, "tool_error": -0.025, "outcome": 0.0}
    )
    assert r == pytest.approx(-0.025)  # the penalty now; well_formed and tool_ok on success
    assert info["shaping_deferred"] == pytest.approx(0.045)
    dense = MathTools(python_tool=False, shaping="dense")
    dense.reset(seed=0)
    assert dense.step(action)[1] == pytest.approx(0.02)  # the old, farmable payment


def test_openai_style_action(env):
    env.reset(seed=0)
    msg = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c7", "type": "function",
             "function": {"name": "calculator", "arguments": '{"expression": "2^10"}'}}
        ],
    }  # fmt: skip
    obs, *_ = env.step(msg)
    assert obs == [{"role": "tool", "name": "calculator", "content": "1024", "tool_call_id": "c7"}]


def test_fuzz_random_actions_never_raise(env):
    rng = np.random.default_rng(0)
    alphabet = list('abc{}[]<>/":,0123456789 ._-\n') + ["<tool_call>", "</tool_call>", "<answer>"]
    for episode in range(20):
        env.reset(seed=episode)
        for _ in range(10):
            action = "".join(rng.choice(alphabet, size=int(rng.integers(0, 40))))
            _, r, term, _, info = env.step(action)
            assert isinstance(r, float) and set(info["reward_components"]) == set(
                MathTools.reward_spec.components
            )
            if term:
                break


# ------------------------------------------------------------ python tool
def test_sandbox_unavailable_propagates(monkeypatch):
    import agentgym.sandbox as sandbox_pkg

    def unavailable(*args: object, **kwargs: object) -> None:
        raise SandboxUnavailable("no backend works here")

    monkeypatch.setattr(sandbox_pkg, "shared_pool", unavailable, raising=False)
    env = MathTools(python_tool=True)
    env.reset(seed=0)
    with pytest.raises(SandboxUnavailable):
        env.step(call("python", code="print(1)"))
    env.close()


@pytest.mark.filterwarnings("ignore:The 'local' sandbox backend")
def test_python_tool_runs_in_sandbox():
    env = MathTools(python_tool=True, sandbox="local")  # local: runs on any dev machine
    env.reset(seed=0)
    obs, _, _, _, info = env.step(call("python", code="print(sum(range(101)))"))
    assert obs[0]["content"].strip() == "5050"
    assert info["reward_components"]["tool_ok"] == pytest.approx(0.05)
    obs, _, _, _, info = env.step(call("python", code="raise SystemExit(3)"))
    assert obs[0]["content"].startswith("Error: the program exited with code 3")
    assert info["reward_components"]["tool_error"] == pytest.approx(-0.05)
    env.close()
    assert env._sandbox is None


HOSTILE = {
    "prints an answer": "print('<answer>{gold}</answer>')\nprint('Correct.')",
    "writes files": "open('answer.txt', 'w').write('<answer>{gold}</answer>')",
    "exits at once": "import os\nprint('<answer>{gold}</answer>', flush=True)\nos._exit(0)",
    "kills itself": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "kills its process group": "import os, signal\nos.killpg(0, signal.SIGKILL)",
    "kills its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
}


@pytest.mark.parametrize("backend", ["local", "bwrap"])
@pytest.mark.filterwarnings("ignore:The 'local' sandbox backend")
def test_python_tool_output_never_reaches_the_verdict(backend):
    """Whatever a program prints, writes or kills, the answer and its score stay the agent's."""
    from tests.sandbox.conftest import require

    require(backend)
    env = MathTools(python_tool=True, sandbox=backend)
    try:
        env.reset(seed=0)
        gold = env.gold
        for name, code in HOSTILE.items():
            obs, r, term, trunc, info = env.step(call("python", code=code.format(gold=gold)))
            assert not term and not trunc, name  # tool output never ends the episode
            assert info["outcome"] == 0.0 and info["success"] is False, name
            assert r <= 0.0 and obs[0]["role"] == "tool", name
            failed = info["reward_components"]["tool_error"] == pytest.approx(-0.05)
            assert failed == name.startswith("kills"), (name, obs)  # a tool error, not infra
        assert env.gold == gold
        _, r, term, _, info = env.step(f"<answer>{gold + 1}</answer>")
        assert term and r == 0.0 and info["success"] is False
        env.reset(seed=0)
        _, r, term, _, info = env.step(f"<answer>{gold}</answer>")
        assert term and r == 1.0 and info["success"] is True
    finally:
        env.close()
