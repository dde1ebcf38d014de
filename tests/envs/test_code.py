"""Code-v0: shipped tasks, test splitting, code extraction, rewards, sandbox failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.envs.code import Code, CodeTask, extract_code, load_tasks, split_tests
from agentgym.errors import ConfigError, InfraError, SandboxError, SandboxUnavailable
from agentgym.sandbox import available_backends, get_sandbox
from agentgym.spaces import Chat, Utterance
from tests.sandbox.conftest import require

pytestmark = pytest.mark.filterwarnings("ignore:The 'local' sandbox backend")

ENV_ID = "agentgym/Code-v0"
RLE = "agentgym/000_run_length_encode"


def fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\n"


STUB = """
class _Stub:
    def __init__(self, *a, **k):
        pass
    def __getattr__(self, name):
        return lambda *a, **k: _Stub()
    def __call__(self, *a, **k):
        return _Stub()
{ep} = _Stub()
"""

HUMANEVAL_STYLE = {
    "task_id": "Mine/0",
    "prompt": "def add(a: int, b: int) -> int:\n    '''Sum of a and b.'''\n",
    "entry_point": "add",
    "test": (
        "METADATA = {'author': 'me'}\n\n"
        "def helper(x):\n    return x * 2\n\n"
        "def check(candidate):\n"
        "    '''Docstring, not a test.'''\n"
        "    assert candidate(1, 2) == 3\n"
        "    assert candidate(-1, 1) == 0\n"
        "    assert candidate(2, 2) == helper(2)\n"
        "    assert candidate(10, 5) == 15, 'big numbers'\n"
    ),
}


@pytest.fixture(scope="module")
def env():
    e = Code(backend="local")
    yield e
    e.close()


# ------------------------------------------------------------- shipped set
def test_shipped_tasks_are_well_formed():
    tasks = load_tasks()
    assert len(tasks) >= 30
    assert len({t.task_id for t in tasks}) == len(tasks)
    for t in tasks:
        assert t.entry_point in t.prompt, t.task_id
        assert "canonical_solution" in t.extra, t.task_id
        assert len(t.tests) >= 4 and "check" not in t.tests, t.task_id  # split per statement
        assert list(t.tests) == [f"test_{i}" for i in range(1, len(t.tests) + 1)]


def test_every_shipped_task_passes_with_its_reference_and_fails_a_stub(env):
    for i, task in enumerate(env.tasks):
        env.reset(options={"task": i})
        obs, reward, term, trunc, info = env.step(fenced(STUB.format(ep=task.entry_point)))
        assert not term and 0 < len(info["failed"]) <= info["tests_total"], task.task_id
        obs, reward, term, trunc, info = env.step(fenced(task.extra["canonical_solution"]))
        assert term and info["success"] and info["outcome"] == 1.0, (task.task_id, obs)
        assert info["tests_passed"] == len(task.tests)


# ------------------------------------------------------------- splitting
def test_split_humaneval_style_check_into_named_asserts():
    tests, desc = split_tests(HUMANEVAL_STYLE["test"], "add")
    assert list(tests) == ["test_1", "test_2", "test_3", "test_4"]
    assert desc["test_4"] == "assert candidate(10, 5) == 15, 'big numbers'"
    sb = get_sandbox("local")
    try:
        good = sb.run_tests("def add(a, b):\n    return a + b\n", tests)
        assert good.all_passed
        # wrong only for negative inputs: exactly test_2 fails, with the assert shown
        bad = sb.run_tests("def add(a, b):\n    return abs(a) + b\n", tests)
        assert [o.name for o in bad.outcomes if not o.passed] == ["test_2"]
        assert "assert candidate(-1, 1) == 0" in bad.outcomes[1].error
    finally:
        sb.close()


def test_split_replays_state_but_not_earlier_failures():
    test = (
        "def check(candidate):\n"
        "    c = candidate()\n"
        "    c.add(1)\n"
        "    assert c.total() == 100\n"  # wrong expectation: fails
        "    c.add(2)\n"
        "    assert c.total() == 3\n"  # sees both adds
        "    for k in range(3):\n"
        "        assert c.total() + k >= 3\n"
        "    try:\n"
        "        c.add('x')\n"
        "    except TypeError:\n"
        "        pass\n"
        "    else:\n"
        "        raise AssertionError('expected TypeError')\n"
    )
    tests, desc = split_tests(test, "Acc")
    assert list(tests) == ["test_1", "test_2", "test_3", "test_4"]
    assert desc["test_3"].startswith("for k in range(3)")
    code = (
        "class Acc:\n"
        "    def __init__(self):\n        self.n = 0\n"
        "    def add(self, x):\n        self.n += x\n"
        "    def total(self):\n        return self.n\n"
    )
    sb = get_sandbox("local")
    try:
        rep = sb.run_tests(code, tests, live_objects=True)
        plain_only = sb.run_tests(code, tests)
    finally:
        sb.close()
    assert [o.passed for o in rep.outcomes] == [False, True, True, True]
    # without live objects an instance cannot cross to the grader: a clear failure
    assert not any(o.passed for o in plain_only.outcomes)
    assert "returned an object of type Acc; expected plain data" in plain_only.outcomes[1].error


def test_prompt_helpers_are_available_to_tests(env):
    """As in HumanEval's decode_cyclic: the prompt defines a helper the tests call."""
    task = {
        "task_id": "Mine/helper",
        "prompt": (
            "import string\n\n"
            "def shift(s: str) -> str:\n    return s[1:] + s[:1]\n\n"
            "def unshift(s: str) -> str:\n    '''Inverse of shift.'''\n"
        ),
        "entry_point": "unshift",
        "test": (
            "def check(candidate):\n"
            "    for w in ['abc', 'x', '', string.ascii_lowercase]:\n"
            "        assert candidate(shift(w)) == w\n"
        ),
    }
    env.reset(options={"task": task})
    _, _, _, _, info = env.step(fenced("def unshift(s):\n    return s\n"))
    assert info["failed"] == ["test_1"]
    assert env.step(fenced("def unshift(s):\n    return s[-1:] + s[:-1]\n"))[4]["success"]


@pytest.mark.parametrize(
    "test",
    [
        "assert add(1, 2) == 3\n",  # no check()
        "def check(candidate):\n    if candidate(1, 2) != 3:\n        print('bad')\n",
        "def check(candidate:\n",  # does not parse
    ],
)
def test_split_falls_back_to_one_test(test):
    tests, desc = split_tests(test, "add")
    assert list(tests) == ["check"] and test in tests["check"]


# ------------------------------------------------------------- extraction
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nx = 1\n```", "x = 1\n"),
        ("```py\nx = 1\n```", "x = 1\n"),
        ("a\n```python\nx = 1\n```\nb\n```python\nx = 2\n```\nc", "x = 2\n"),
        ("```\nx = 3\n```", "x = 3\n"),
        ("```text\nlog\n```\n```python\nx = 4\n```\n```\nnote\n```", "x = 4\n"),
        ("```python\nx = 5\n", "x = 5\n"),  # unterminated fence
        ("x = 6", "x = 6"),  # no fence: the whole text
        ("", None),
        ("```python\n\n```", None),
    ],
)
def test_extract_code(text, code):
    assert extract_code(text) == code


# ------------------------------------------------------------- the env
def test_reset_observation_and_task_choice(env):
    obs, info = env.reset(seed=3)
    assert obs in Chat() and [m["role"] for m in obs] == ["system", "user"]
    assert "```python" in obs[0]["content"]
    task = next(t for t in env.tasks if t.task_id == info["task_id"])
    assert task.prompt.strip() in obs[1]["content"]
    assert info["n_tests"] == len(task.tests)
    assert env.reset(seed=3) == (obs, info)
    assert len({env.reset(seed=s)[1]["task_id"] for s in range(20)}) >= 8
    by_id = env.reset(seed=0, options={"task": RLE})[1]
    by_index = env.reset(seed=9, options={"task": 0})[1]
    assert by_id == by_index and by_id["task_id"] == RLE
    custom = env.reset(options={"task": HUMANEVAL_STYLE})[1]
    assert custom["task_id"] == "Mine/0" and custom["n_tests"] == 4
    for bad in (999, "no/such-task", 1.5, {"task_id": "x"}):
        with pytest.raises(ConfigError):
            env.reset(options={"task": bad})


def test_rewards_track_best_so_far_and_outcome(env):
    env.reset(options={"task": RLE})
    total = 6
    # passes "", "x" and "abab" (runs of one): 3 of 6
    partial = "def run_length_encode(s):\n    return ''.join(c + '1' for c in s)\n"
    _, r, term, _, info = env.step(fenced(partial))
    assert info["reward_components"] == {"format": 0.0, "tests": 3 / total, "outcome": 0.0}
    assert info["tests_passed"] == 3 and not term and not info["success"]
    assert r == 0.0  # partial passes are gated: paid only if the episode succeeds
    _, r, _, _, info = env.step(fenced("def run_length_encode(s):\n    return ''\n"))
    assert info["tests_passed"] == 1 and r == 0.0  # worse than the best: no reward
    task = env.task
    obs, r, term, _, info = env.step(fenced(task.extra["canonical_solution"]))
    assert info["reward_components"]["tests"] == pytest.approx(3 / total)
    # the success turn pays the deferred partial passes (3/6 earlier, 3/6 now) and the outcome
    assert r == pytest.approx(6 / total + 1.0) and term and info["success"]
    assert "All 6 tests passed" in obs[0]["content"]
    obs, r, term, _, _ = env.step(fenced(partial))
    assert term and r == 0.0 and "already solved" in obs[0]["content"]


def test_feedback_names_failing_tests_with_traceback(env):
    env.reset(options={"task": RLE})
    obs, *_ = env.step(fenced("def run_length_encode(s):\n    return s.upper()\n"))
    text = obs[0]["content"]
    assert text.startswith("1/6 tests passed.")
    assert "FAILED test_1: assert candidate('aaabcc') == 'a3b1c2'" in text
    assert "AssertionError" in text and "test_2" not in text  # "" -> "" passes
    obs, *_ = env.step(fenced("def helper():\n    pass\n"))
    assert "must define `run_length_encode`" in obs[0]["content"]
    assert "(same error as test_1)" in obs[0]["content"]
    obs, *_ = env.step(fenced("def run_length_encode(s):\n    print('dbg', s)\n    return s\n"))
    assert "Your program printed:\ndbg aaabcc" in obs[0]["content"]


@pytest.mark.parametrize(
    "action",
    ["", "   \n", "I am not sure how to solve this.", fenced("def f(:\n    pass"), "x = 1\x00"],
)
def test_no_code_or_syntax_error_is_a_format_penalty(env, action):
    env.reset(options={"task": RLE})
    obs, r, term, trunc, info = env.step(action)
    assert r == pytest.approx(-0.1) and info["reward_components"]["format"] == -0.1
    assert not term and not trunc and info["tests_passed"] == 0
    content = obs[0]["content"]
    assert "Nothing was run" in content or "No code found" in content


def test_junk_actions_never_raise(env):
    env.reset(options={"task": RLE})
    space = Utterance(seed=1)
    for _ in range(30):
        obs, r, term, trunc, info = env.step(space.sample())
        assert obs in Chat() and not term and r <= 0.0


def test_user_code_timeout_crash_and_oom_are_ordinary_failures():
    e = Code(backend="local", limits={"wall_time_s": 1.0, "memory_mb": 256})
    try:
        e.reset(options={"task": RLE})
        obs, r, term, _, info = e.step(fenced("while True:\n    pass\n"))
        assert info["timed_out"] and not term and r == 0.0
        assert "time limit (1 s)" in obs[0]["content"]
        obs, r, term, _, info = e.step(fenced("x = bytearray(2**31)\n"))
        assert info["oom"] and not term and "out of memory" in obs[0]["content"]
        obs, r, term, _, info = e.step(fenced("import os\nos._exit(3)\n"))
        assert info["tests_passed"] == 0 and not term
        obs, r, term, _, info = e.step(fenced(e.task.extra["canonical_solution"]))
        assert term and info["success"]  # the sandbox survived all of that
    finally:
        e.close()


# ------------------------------------------------------------- sandboxes
def test_sandbox_failure_is_an_infra_error_not_a_reward():
    sb = get_sandbox("local")
    sb.close()  # a dead sandbox: every call fails in the infrastructure
    e = Code(sandbox=sb)
    e.reset(options={"task": RLE})
    with pytest.raises(InfraError) as exc:
        e.step(fenced("def run_length_encode(s):\n    return s\n"))
    assert isinstance(exc.value, SandboxError)  # SandboxUnavailable is both
    assert isinstance(exc.value.__cause__, SandboxError)


class _DownSandbox:
    backend = "down"

    def run_tests(self, code, tests, *, limits=None, setup="", live_objects=False):
        raise SandboxUnavailable("docker daemon is not running; start it")

    def close(self):
        raise AssertionError("the env must not close a sandbox it was given")


def test_unavailable_sandbox_propagates_unchanged():
    e = Code(sandbox=_DownSandbox())
    e.reset(options={"task": RLE})
    with pytest.raises(SandboxUnavailable, match="docker daemon"):
        e.step(fenced("def run_length_encode(s):\n    return s\n"))
    e.step("")  # a format penalty never touches the sandbox
    e.close()


def test_injected_sandbox_is_shared_and_not_closed():
    sb = get_sandbox("local")
    try:
        envs = [Code(sandbox=sb), Code(sandbox=sb)]
        for e in envs:
            e.reset(options={"task": RLE})
            assert e.step(fenced(e.task.extra["canonical_solution"]))[4]["success"]
            e.close()
        assert sb.run_python("print(1)").stdout == "1\n"  # still open
    finally:
        sb.close()


def test_env_closes_the_sandbox_it_created():
    e = Code(backend="local", warm=False)
    e.reset(options={"task": RLE})
    e.step(fenced("def run_length_encode(s):\n    return s\n"))
    created = e._sandbox
    e.close()
    with pytest.raises(SandboxError, match="closed"):
        created.run_python("print(1)")


def test_envs_share_one_warm_pool_grown_to_the_workers_and_closed_at_exit():
    from concurrent.futures import ThreadPoolExecutor

    from agentgym.sandbox import SandboxPool
    from agentgym.sandbox.pool import close_shared_pools

    envs = [Code(backend="local") for _ in range(3)]
    solution = fenced(envs[0].tasks[0].extra["canonical_solution"])
    for e in envs:
        e.reset(options={"task": RLE})
    with ThreadPoolExecutor(3) as ex:
        infos = list(ex.map(lambda e: e.step(solution)[4], envs))
    assert all(i["success"] for i in infos)
    (pool,) = {id(e._sandbox): e._sandbox for e in envs}.values()
    assert isinstance(pool, SandboxPool) and 1 <= len(pool._all) <= 3
    for e in envs:
        e.close()
    assert pool.run_python("print(1)").stdout == "1\n"  # shared: still open
    close_shared_pools()  # what atexit runs
    with pytest.raises(SandboxError, match="closed"):
        pool.run_python("print(1)")


@pytest.mark.parametrize("backend", ["bwrap", "pool"])
def test_isolating_backends(backend):
    if backend == "bwrap" or "docker" not in available_backends():  # the pool takes "auto"
        require("bwrap")  # skips on a dev machine without it; fails in CI (CI=true)
    e = Code(backend=backend)
    try:
        e.reset(options={"task": RLE})
        assert e.step(fenced("def run_length_encode(s):\n    return s\n"))[4]["tests_passed"] == 1
        assert e.step(fenced(e.task.extra["canonical_solution"]))[4]["success"]
    finally:
        e.close()


# ------------------------------------------------------------- config
def test_tasks_from_jsonl_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(HUMANEVAL_STYLE) + "\n\n", encoding="utf-8")
    e = Code(tasks=str(path), backend="local")
    try:
        obs, info = e.reset(seed=0)
        assert info["task_id"] == "Mine/0" and "def add" in obs[1]["content"]
        assert e.step(fenced("def add(a, b):\n    return a + b\n"))[4]["success"]
    finally:
        e.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(HUMANEVAL_STYLE) + "\n" + json.dumps({"task_id": "x"}) + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: key 'prompt'"):
        Code(tasks=str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        Code(tasks=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="not valid JSON"):
        (tmp_path / "junk.jsonl").write_text("{nope\n")
        Code(tasks=str(tmp_path / "junk.jsonl"))


def test_bad_configuration_raises():
    with pytest.raises(ConfigError, match="unknown sandbox backend"):
        Code(backend="vm")
    with pytest.raises(ConfigError, match="Unknown sandbox limit"):
        Code(limits={"wall_time": 3})
    with pytest.raises(ConfigError, match="tasks is empty"):
        Code(tasks=[])
    with pytest.raises(ConfigError, match="entry_point"):
        CodeTask.from_record({**HUMANEVAL_STYLE, "entry_point": "not a name"})


def test_registered_and_check_env():
    assert agentgym.spec(ENV_ID).max_episode_steps == 4
    e = agentgym.make(ENV_ID, backend="local", max_turns=2)
    try:
        check_env(e.unwrapped, skip_render_check=True)
        e.reset(seed=0)
        assert e.step("")[3] is False
        assert e.step("")[3] is True  # TimeLimit truncates; the env only terminates
    finally:
        e.close()


# ------------------------------------------- grading the code cannot reach
HEFORM = Path(__file__).parent / "data" / "humaneval_form.jsonl"


def test_humaneval_form_set_passes_canonical_and_fails_wrong():
    """Float tolerances, expected exceptions, prompt helpers, candidate passed to helpers."""
    env = Code(tasks=HEFORM, backend="local")
    try:
        assert len(env.tasks) >= 10
        for i, t in enumerate(env.tasks):
            env.reset(options={"task": i})
            *_, info = env.step(fenced(t.prompt + t.extra["wrong_solution"]))
            assert not info["success"] and info["tests_passed"] < info["tests_total"], t.task_id
            *_, info = env.step(fenced(t.prompt + t.extra["canonical_solution"]))
            assert info["success"], (t.task_id, info)
        # a completion that only defines the entry point still finds the prompt's helpers
        env.reset(options={"task": "agentgym-heform/unswap_pairs"})
        *_, info = env.step(fenced("def unswap_pairs(s):\n    return swap_pairs(s)\n"))
        assert info["success"]
    finally:
        env.close()


KILLERS = {
    "itself": "os.kill(os.getpid(), signal.SIGKILL)",
    "its parent": "os.kill(os.getppid(), signal.SIGKILL)",
    "its process group": "os.killpg(0, signal.SIGKILL)",
    "every process it may": "os.kill(-1, signal.SIGKILL)",
    "the sandbox's init": "os.kill(1, signal.SIGKILL)",
    "memory": "x = [bytearray(1 << 20) for _ in range(10 ** 6)]",
    "time": "while True:\n        pass",
    "processes": "while True:\n        os.fork()",
}


@pytest.mark.parametrize("backend", ["bwrap", "docker", "local"])
def test_failures_the_agent_causes_are_reward_zero_not_infra_errors(backend):
    require(backend)
    env = Code(backend=backend, limits={"wall_time_s": 2, "memory_mb": 256, "max_processes": 16})
    try:
        for what, body in KILLERS.items():
            env.reset(options={"task": RLE})
            code = f"import os, signal\ndef run_length_encode(s):\n    {body}\n"
            obs, reward, term, trunc, info = env.step(fenced(code))  # never raises InfraError
            assert reward == 0.0 and info["tests_passed"] == 0 and not term, (what, info)
            assert obs[0]["content"].startswith("0/6 tests passed."), (what, obs)
            *_, info = env.step(fenced(env.task.extra["canonical_solution"]))
            assert info["success"], (what, "the sandbox still works afterwards")
    finally:
        env.close()


def _battery_task(hack_task):
    lines = []
    for src in hack_task.tests.values():
        for line in src.splitlines():
            line = line.strip()
            if line.startswith("assert"):
                lines.append("    " + line.replace("mix(", "candidate("))
    test = "def check(candidate):\n" + "\n".join(lines) + "\n"
    return {
        "task_id": "battery/mix",
        "prompt": "def mix(a, b):\n    '''Secret.'''\n",
        "entry_point": "mix",
        "test": test,
        "canonical_solution": hack_task.reference,
    }


def test_every_hack_earns_outcome_and_tests_zero_in_the_env():
    from agentgym.sandbox.hacks import HACKS, make_task

    task = _battery_task(make_task())
    env = Code(backend="local", limits={"wall_time_s": 2})
    try:
        env.reset(options={"task": task})
        assert len(env.task.tests) == 11
        for hack in HACKS:
            env.reset(options={"task": task})
            _, reward, _, _, info = env.step(fenced(hack.code))
            parts = info["reward_components"]
            assert parts["outcome"] == 0 and parts["tests"] == 0, hack.name
        env.reset(options={"task": task})
        assert env.step(fenced(task["canonical_solution"]))[4]["success"]
    finally:
        env.close()
