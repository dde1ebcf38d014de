import os
import subprocess
import sys
import textwrap

import gymnasium
import pytest

import agentgym
from agentgym.errors import EnvNotFound, RegistrationError

ECHO = "tests.core.fixture_envs:Echo"


def test_register_make_and_gymnasium_make_share_one_registry():
    agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=2)
    env = agentgym.make("test/Echo-v0")
    obs, _ = env.reset(seed=0)
    assert obs[-1]["role"] == "user"
    assert gymnasium.make("test/Echo-v0").spec.max_episode_steps == 2
    assert "test/Echo-v0" in agentgym.list_envs()
    assert agentgym.spec("test/Echo-v0").entry_point == ECHO


def test_turn_limit_truncates_and_last_info_has_outcome():
    agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=2)
    env = agentgym.make("test/Echo-v0")
    env.reset(seed=1)
    _, _, term, trunc, info = env.step("wrong")
    assert (term, trunc) == (False, False)
    _, _, term, trunc, info = env.step("wrong again")
    assert (term, trunc) == (False, True)
    assert info["outcome"] == 0.0 and info["success"] is False
    env = agentgym.make("test/Echo-v0", max_turns=5)
    assert env.spec.max_episode_steps == 5


@pytest.mark.parametrize("maker", [agentgym.make, gymnasium.make])
def test_a_step_that_terminates_at_the_turn_limit_is_not_also_truncated(maker):
    agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=2)
    env = maker("test/Echo-v0")
    obs, _ = env.reset(seed=1)
    word = obs[-1]["content"].split()[-1].rstrip(".")
    assert env.step("wrong")[2:4] == (False, False)
    _, _, term, trunc, info = env.step(word)  # solved on the last allowed turn
    assert (term, trunc) == (True, False) and info["success"] is True
    # The wrapper is part of the spec: a make() from the made env's spec keeps it.
    again = gymnasium.make(env.spec)
    again.reset(seed=1)
    again.step("wrong")
    assert again.step(word)[2:4] == (True, False)


def test_reregistering_differently_raises_and_same_spec_is_noop():
    agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=2)
    agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=2)
    with pytest.raises(RegistrationError, match="bump the version"):
        agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=3)
    with pytest.raises(RegistrationError, match="malformed"):
        agentgym.register("no version here", entry_point=ECHO)


def test_unknown_id_suggests_close_matches():
    agentgym.register("test/Echo-v0", entry_point=ECHO, max_turns=2)
    with pytest.raises(EnvNotFound, match="Did you mean 'test/Echo-v0'"):
        agentgym.make("test/Ecko-v0")


def test_entry_point_plugin_is_found_without_importing_it(tmp_path):
    """A distribution on sys.path in the agentgym.envs group loads with `import agentgym`."""
    (tmp_path / "agplugin_demo.py").write_text(
        textwrap.dedent("""
        import agentgym
        from agentgym.core import AgentEnv, user

        class Hello(AgentEnv):
            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                return self.begin([user("say hello")])

            def step(self, action):
                ok = "hello" in action.lower()
                return self.turn([], {"outcome": float(ok)}, terminated=True,
                                 outcome=float(ok), success=ok)

        def register():
            agentgym.register("plugindemo/Hello-v0", entry_point="agplugin_demo:Hello", max_turns=1)
    """)
    )
    dist = tmp_path / "agplugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agplugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[agentgym.envs]\nhello = agplugin_demo:register\n")
    code = textwrap.dedent("""
        import sys, agentgym
        assert "agplugin_demo" in sys.modules, "plugin should be loaded by import agentgym"
        assert "plugindemo/Hello-v0" in agentgym.list_envs()
        env = agentgym.make("plugindemo/Hello-v0")
        env.reset(seed=0)
        _, r, term, trunc, info = env.step("Hello there")
        print(r, term, info["success"])
    """)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.0", "True", "True"]


def test_broken_plugin_is_reported_not_fatal(tmp_path):
    dist = tmp_path / "agbroken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agbroken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[agentgym.envs]\nbroken = agbroken_missing:register\n")
    code = "import agentgym; print(list(agentgym.load_plugins()))"
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "agbroken_missing" in out.stdout
