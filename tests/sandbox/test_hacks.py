"""The reward-hack battery on every backend: each hack scores 0 tests, the reference all."""

from __future__ import annotations

import re

import pytest

from agentgym.sandbox import SandboxPool
from agentgym.sandbox.hacks import HACKS, Hack, make_task, run_battery

from .conftest import TEST_LIMITS, require

KINDS = sorted({h.kind for h in HACKS})
REQUIRED_KINDS = {
    "forged-verdict",
    "patched-harness",
    "fake-values",
    "exits",
    "hooks",
    "frame-walking",
    "test-source",
    "grader-files",
    "zero-tests",
    "output",
}


@pytest.fixture(scope="module", params=["bwrap", "docker", "local"])
def warm(request):
    """A one-worker warm pool per backend: calls share one long-lived agent."""
    require(request.param)
    lim = {**TEST_LIMITS, "memory_mb": 512, "output_bytes": 65536}
    with pytest.warns(UserWarning) if request.param == "local" else _nothing():
        pool = SandboxPool(request.param, size=1, **lim)
    yield pool
    pool.close()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_battery_covers_every_class_of_the_issue():
    assert REQUIRED_KINDS <= set(KINDS)
    assert len({(h.kind, h.name) for h in HACKS}) == len(HACKS)


def test_every_hack_scores_zero(warm):
    broken = [
        f"{r.hack.kind}: {r.hack.name}: {r.report.passed}/{r.report.total}"
        for r in run_battery(warm)
        if not r.held
    ]
    assert broken == []


def test_a_solution_that_knows_the_answers_does_pass(warm):
    """The battery is not vacuous: values returned honestly are believed."""
    task = make_task(seed=7)
    table = {}
    for src in task.tests.values():
        for a, b, v in re.findall(r"(?:mix|candidate)\((\d+), (\d+)\) == ([\d.]+)", src):
            table[(int(a), int(b))] = int(float(v))
    cheat = f"_T = {table!r}\ndef mix(a, b):\n    return _T[(a, b)]\n"
    (r,) = run_battery(warm, hacks=[Hack("control", "lookup table", cheat)], task=task)
    assert r.report.all_passed


def test_sandbox_check_prints_one_line_per_class(monkeypatch, capsys):
    import agentgym.sandbox.hacks as hacks
    from agentgym.sandbox.cli import main

    require("local")
    one_each = list({h.kind: h for h in HACKS if not h.slow}.values())
    monkeypatch.setattr(hacks, "HACKS", one_each)
    assert main(["sandbox", "check", "--backend", "local"]) in (0, 1)  # 1: no isolating backend
    out = capsys.readouterr().out.splitlines()
    lines = [ln for ln in out if ln.startswith("hack battery  local")]
    assert len(lines) == len(one_each)
    assert all(ln.endswith("held (1 cases)") for ln in lines), lines


KILL_THE_AGENT = """
import os
def agent_of(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
def f(x):
    os.kill(agent_of(os.getppid()), 9)  # our parent is the loaded program; its, the agent
"""


def test_code_that_kills_its_agent_is_scored_zero_where_it_can_reach_it():
    """Without a uid switch (a host that is not root) the code can signal the agent.

    A run that kills it is the code's failure with a reason, never an infrastructure
    error, since a fresh agent works; the sandbox goes on working.
    """
    import warnings

    from agentgym.sandbox import get_sandbox

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sb = get_sandbox("local", **TEST_LIMITS)
    sb.uid = -1  # as on a host that is not root: the code runs as the agent's user
    try:
        r = sb.run_python("import os\nos.kill(os.getppid(), 9)")
        assert r.exit_code == -9 and "the code ended it" in r.stderr, r
        rep = sb.run_tests(KILL_THE_AGENT, {"t1": "assert f(1) == 1", "t2": "assert f(2) == 2"})
        assert rep.total == 2 and rep.passed == 0, rep
        assert "exit code -9" in (rep.outcomes[0].error or ""), rep
        assert sb.run_python("print(1)").stdout == "1\n"
    finally:
        sb.close()
