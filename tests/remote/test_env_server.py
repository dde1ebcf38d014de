"""The env server and its client env, over real localhost HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import warnings

import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
import tests.remote.envs  # noqa: F401  (registers the test envs)
from agentgym.errors import ConfigError, EnvNotFound, InfraError
from agentgym.remote import EnvServer, RemoteEnv, RemoteEnvError, RemoteError

TOKEN = "correct-horse-battery"


@pytest.fixture()
def server():
    with EnvServer(port=0) as s:
        yield s


def _raw(url, method="GET", body=None, token=None):
    """(status, parsed body) of one raw HTTP request."""
    req = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), method=method
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_remote_env_passes_check_env(server):
    env = agentgym.make(f"remote:{server.url}/agentgym/Wordle-v0")
    assert isinstance(env, RemoteEnv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught if "render" not in str(w.message).lower()] == []
    env.close()
    assert server.session_count == 0


def test_remote_episode_equals_local_episode(server):
    actions = ["crane", "<guess>slate</guess>", "nonsense!", "pious", "mount", "light"]
    local = agentgym.make("agentgym/Wordle-v0")
    remote = agentgym.make(f"remote:{server.url}/agentgym/Wordle-v0")
    assert remote.max_turns == local.spec.max_episode_steps
    assert remote.reward_components.keys() == local.unwrapped.reward_spec.components.keys()
    assert remote.reset(seed=3) == local.reset(seed=3)
    for a in actions:
        r, l_ = remote.step(a), local.step(a)
        assert r == l_
        if r[2] or r[3]:
            break
    assert r[3] or r[2]  # the server's TimeLimit ended the episode
    remote.close()


def test_env_kwargs_and_max_turns_reach_the_server(server):
    env = agentgym.make(f"remote:{server.url}/test/Echo-v0", max_turns=1)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step("wrong")
    assert (terminated, truncated) == (False, True)
    with pytest.raises(ConfigError, match="no_such_kwarg"):
        agentgym.make(f"remote:{server.url}/test/Echo-v0", no_such_kwarg=1)
    env.close()


def test_unknown_env_and_bad_url(server):
    with pytest.raises(EnvNotFound, match="Did you mean 'agentgym/Wordle-v0'"):
        agentgym.make(f"remote:{server.url}/agentgym/Wordel-v0")
    with pytest.raises(ConfigError, match="malformed"):
        agentgym.make("remote:ftp://x/agentgym/Wordle-v0")
    assert server.session_count == 0


def test_token_required_and_checked():
    with EnvServer(port=0, token=TOKEN) as s:
        url = f"remote:{s.url}/test/Echo-v0"
        for token in (None, "wrong-token-123"):
            with pytest.raises(RemoteError, match="401"):
                agentgym.make(url, token=token)
        # 401s say nothing: the same body whatever route, env or session was asked for.
        answers = {
            _raw(s.url + path, method, body, token)
            == (401, {"error": {"type": "Unauthorized", "message": "unauthorized"}})
            for path, method, body, token in [
                ("/v1/envs", "GET", None, None),
                ("/v1/nope", "GET", None, "x" * 20),
                ("/v1/sessions", "POST", {"env_id": "agentgym/Wordle-v0"}, None),
                ("/v1/sessions/abc/step", "POST", {"action": "x"}, TOKEN + "x"),
            ]
        }
        assert answers == {True}
        assert s.session_count == 0
        env = agentgym.make(url, token=TOKEN)
        env.reset(seed=1)
        assert env.step("wrong")[1] == pytest.approx(-0.1)
        assert _raw(s.url + "/v1/health", token=TOKEN) == (200, {"status": "ok", "protocol": 1})
        env.close()


def test_token_from_environment(monkeypatch):
    monkeypatch.setenv("AGENTGYM_TOKEN", TOKEN)
    with EnvServer(port=0, token=TOKEN) as s:
        env = agentgym.make(f"remote:{s.url}/test/Echo-v0")
        assert env.reset(seed=0)[0]
        env.close()


def test_refuses_public_interface_without_token():
    with pytest.raises(ConfigError, match="refusing to bind '0.0.0.0' without a bearer token"):
        EnvServer(host="0.0.0.0", port=0)
    with pytest.raises(ConfigError, match="at least 8"):
        EnvServer(port=0, token="short")
    with EnvServer(host="0.0.0.0", port=0, token=TOKEN) as s:  # with a token it serves
        port = s.url.rsplit(":", 1)[1]
        assert _raw(f"http://127.0.0.1:{port}/v1/health", token=TOKEN)[0] == 200


def test_session_cap():
    with EnvServer(port=0, max_sessions=2) as s:
        url = f"remote:{s.url}/test/Echo-v0"
        a, b = agentgym.make(url), agentgym.make(url)
        with pytest.raises(RemoteError, match="2 sessions are open"):
            agentgym.make(url)
        assert s.session_count == 2
        a.close()
        c = agentgym.make(url)
        assert c.reset(seed=0)[0] and b.reset(seed=0)[0]
        b.close()
        c.close()
        assert s.session_count == 0


def test_idle_sessions_are_reaped():
    with EnvServer(port=0, idle_timeout_s=0.2) as s:
        env = agentgym.make(f"remote:{s.url}/test/Echo-v0")
        env.reset(seed=0)
        _wait(lambda: s.session_count == 0)  # the reaper thread closed it
        with pytest.raises(RemoteError, match="reaped"):
            env.step("wrong")
        obs, _ = env.reset(seed=0)  # a reset opens a fresh session
        assert obs and s.session_count == 1
        env.close()


def test_dead_server_is_an_infra_error():
    s = EnvServer(port=0).start()
    env = agentgym.make(f"remote:{s.url}/test/Echo-v0")
    env.reset(seed=0)
    s.close()
    with pytest.raises(InfraError, match="did not answer"):
        env.step("wrong")
    env.close()  # closing against a dead server is quiet
    with pytest.raises(InfraError, match="Is `agentgym serve-env` running"):
        agentgym.make(f"remote:{s.url}/test/Echo-v0")


def test_every_request_has_a_timeout(server):
    env = agentgym.make(f"remote:{server.url}/test/Slow-v0", timeout_s=0.3, delay=1.5)
    env.reset(seed=0)
    with pytest.raises(InfraError, match="within 0.3s"):
        env.step("x")
    env.close()


def test_env_exception_is_an_env_error_not_infra(server):
    env = agentgym.make(f"remote:{server.url}/test/Exploding-v0")
    env.reset(seed=0)
    env.step("wrong")
    with pytest.raises(RemoteEnvError, match="RuntimeError: env bug") as e:
        env.step("wrong")
    assert not isinstance(e.value, InfraError)
    env.close()


def test_collector_marks_dead_server_infra_error(tiny_tokenizer, tmp_path):
    from agentgym.policies.scripted import ScriptedPolicy
    from agentgym.rollout.collector import collect

    s = EnvServer(port=0).start()
    url = f"remote:{s.url}/test/Echo-v0"
    calls = []

    def answer(messages):
        calls.append(1)
        if len(calls) == 2:  # the server dies after the first batch of actions
            s.close()
        return "wrong"

    policy = ScriptedPolicy(answer, tiny_tokenizer)
    trajs = collect(policy, url, [0, 1], out=tmp_path / "r.jsonl", progress=False)
    assert [t.status for t in trajs] == ["infra_error", "infra_error"]
    assert all("did not answer" in t.error for t in trajs)

    with EnvServer(port=0) as live:
        ok = collect(policy, f"remote:{live.url}/test/Exploding-v0", [0], out=None, progress=False)
        assert [t.status for t in ok] == ["env_error"]


def test_client_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, agentgym.remote.client; "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cli_serve_env(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, AGENTGYM_TOKEN=TOKEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym.cli", "serve-env", "agentgym/Wordle-v0", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # "agentgym serve-env: ... at http://127.0.0.1:PORT (...)"
        url = line.split(" at ")[1].split()[0]
        remote = agentgym.make(f"remote:{url}/agentgym/Wordle-v0", token=TOKEN)
        assert remote.reset(seed=0)[0][0]["role"] == "system"
        remote.close()
        with pytest.raises(EnvNotFound, match="not served here"):
            agentgym.make(f"remote:{url}/agentgym/FrozenLake-v0", token=TOKEN)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
