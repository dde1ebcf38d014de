"""The Sandbox API on every backend, honest infra failures, the pool, leak checks."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agentgym.errors import ConfigError, InfraError, SandboxError, SandboxUnavailable
from agentgym.sandbox import ExecResult, Limits, Sandbox, SandboxPool, TestReport, get_sandbox
from agentgym.sandbox._host import WORKSPACE_PREFIX

from .conftest import host_processes, make, require, uids_of


def test_protocol_and_results(sb):
    assert isinstance(sb, Sandbox)
    r = sb.run_python("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)")
    assert isinstance(r, ExecResult)
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out, r.oom) == (
        "out\n",
        "err\n",
        3,
        False,
        False,
    )
    assert r.duration_s > 0 and not r.ok


def test_stdin_exceptions_and_syntax_errors(sb):
    r = sb.run_python("print(input()[::-1])", stdin="abc\n")
    assert r.ok and r.stdout == "cba\n"
    r = sb.run_python("def f():\n    raise ValueError('boom')\nf()")
    assert r.exit_code == 1 and "ValueError: boom" in r.stderr and "line 2" in r.stderr
    r = sb.run_python("def (:")
    assert r.exit_code == 1 and "SyntaxError" in r.stderr


def test_shell(sb):
    r = sb.run_shell("echo hi; echo there >&2; exit 7")
    assert (r.stdout, r.stderr, r.exit_code) == ("hi\n", "there\n", 7)


def test_globals_and_env_do_not_leak_between_runs(sb):
    sb.run_python(
        "import os\nos.environ['LEAK'] = '1'\nLEAKED = 1\nimport builtins\nbuiltins.LEAKED = 1"
    )
    r = sb.run_python(
        "import os, builtins\n"
        "print(os.environ.get('LEAK'), hasattr(builtins, 'LEAKED'), 'LEAKED' in globals())"
    )
    assert r.stdout == "None False False\n"


def test_run_tests(sb):
    code = "def add(a, b):\n    return a + b\nSTATE = []"
    tests = {
        "ok": "assert add(1, 2) == 3",
        "wrong": "assert add(1, 2) == 4, 'nope'",
        "mutates": "STATE.append(1)\nassert STATE == [1]",
        "isolated": "assert STATE == []",  # fresh copy of globals per test
        "exits": "import sys\nsys.exit(0)",
        "raises": "raise KeyError('k')",
    }
    rep = sb.run_tests(code, tests)
    assert isinstance(rep, TestReport)
    got = {o.name: o for o in rep.outcomes}
    assert [o.name for o in rep.outcomes] == list(tests)
    assert got["ok"].passed and got["mutates"].passed and got["isolated"].passed
    assert not got["wrong"].passed and "nope" in got["wrong"].error
    assert (
        not got["exits"].passed and not got["raises"].passed and "KeyError" in got["raises"].error
    )
    assert (rep.passed, rep.total, rep.all_passed) == (3, 6, False)


def test_run_tests_with_broken_code(sb):
    rep = sb.run_tests("def add(a, b) return a", {"a": "assert add(1, 1) == 1", "b": "pass"})
    assert rep.total == 2 and rep.passed == 0
    assert all("SyntaxError" in o.error for o in rep.outcomes)
    rep = sb.run_tests("raise RuntimeError('at import')", {"a": "pass"})
    assert not rep.all_passed and "RuntimeError: at import" in rep.outcomes[0].error


def test_run_tests_timeout_is_visible(sb):
    rep = sb.run_tests(
        "x = 1",
        {"fast": "pass", "slow": "while True: pass"},
        limits=Limits(wall_time_s=1, cpu_time_s=10),
    )
    assert rep.result.timed_out
    got = {o.name: o for o in rep.outcomes}
    assert got["fast"].passed and not got["slow"].passed and "time limit" in got["slow"].error


def test_files_roundtrip_and_safety(sb):
    if isinstance(sb, SandboxPool):
        with sb.session() as s:
            _check_files(s)
        with pytest.raises(SandboxError):
            sb.put_file("x", "y")
        with sb.session() as s:  # the next session starts empty
            with pytest.raises(FileNotFoundError):
                s.get_file("data/blob.bin")
    else:
        _check_files(sb)


def _check_files(s):
    blob = bytes(range(256)) * 10
    s.put_file("data/blob.bin", blob)
    assert s.get_file("data/blob.bin") == blob
    s.put_file("mod.py", "VALUE = 41")
    r = s.run_python("import mod\nprint(mod.VALUE + 1)\nopen('out.txt', 'w').write('from code')")
    assert r.stdout == "42\n", r
    assert s.get_file("out.txt") == b"from code"
    with pytest.raises(FileNotFoundError):
        s.get_file("missing.txt")
    for bad in ("/etc/passwd", "../x", "a/../../x", ""):
        with pytest.raises(ConfigError):
            s.get_file(bad)
    s.run_shell("ln -sf /etc/shadow link; ln -sf /etc/hostname link2")
    for link in ("link", "link2"):
        with pytest.raises(SandboxError):
            s.get_file(link)  # never follows a symlink planted by the code
    s.run_shell("rm -rf data mod.py out.txt link link2")


def test_limits_validation():
    with pytest.raises(ConfigError, match="wall_tme_s"):
        get_sandbox("local", wall_tme_s=3)
    with pytest.raises(ConfigError):
        Limits(memory_mb=0)
    with pytest.raises(ConfigError, match="unknown sandbox backend"):
        get_sandbox("firecracker")


def test_local_warns_it_is_not_isolation():
    with pytest.warns(UserWarning, match="NOT isolation"):
        get_sandbox("local").close()


def test_missing_bwrap_raises_unavailable(monkeypatch):
    from agentgym.sandbox import bwrap

    monkeypatch.setenv("PATH", "/nonexistent")
    bwrap.bwrap_unavailable_reason.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap") as e:
            get_sandbox("bwrap")
        assert isinstance(e.value, InfraError)
    finally:
        monkeypatch.undo()
        bwrap.bwrap_unavailable_reason.cache_clear()


def test_docker_daemon_down_raises_unavailable(monkeypatch):
    pytest.importorskip("docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailable, match="dockerd"):
        get_sandbox("docker")


def test_docker_missing_image_raises_unavailable():
    require("docker")
    from agentgym.sandbox.docker import DockerSandbox

    with pytest.raises(SandboxUnavailable, match="build-image"):
        DockerSandbox(Limits(), image="agentgym-sandbox:no-such-tag")


@pytest.mark.parametrize("backend", ["bwrap", "docker", "pool"])
def test_backend_dying_mid_run_raises_infra_error(backend):
    box = make(backend)
    try:
        if isinstance(box, SandboxPool):
            victim = next(iter(box._all))
        else:
            victim = box
            victim.persistent = True
        victim.run_python("pass") if victim is box else None
        errors: list[BaseException] = []
        results: list[ExecResult] = []

        def run():
            try:
                results.append(
                    box.run_python("import time\ntime.sleep(30)", limits=Limits(wall_time_s=20))
                )
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.0)
        if isinstance(box, SandboxPool):
            busy = [w for w in list(box._all) if w not in list(box._idle.queue)]
            _kill_agent(busy[0])
        else:
            _kill_agent(victim)
        t.join(30)
        assert not results, results
        assert len(errors) == 1 and isinstance(errors[0], SandboxError), errors
        r = box.run_python("print('recovered')") if isinstance(box, SandboxPool) else None
        if r is not None:
            assert r.stdout == "recovered\n" and box.replaced >= 1
    finally:
        box.close()


def _kill_agent(worker):
    ch = worker._channel
    if hasattr(ch, "proc"):
        os.killpg(ch.proc.pid, signal.SIGKILL)
    else:
        ch.client.api.remove_container(ch.container, force=True)


def test_pool_is_thread_safe_and_clean():
    pool = make("pool")
    try:
        out: dict[int, str] = {}

        def worker(i: int) -> None:
            for j in range(4):
                code = (
                    "import os\nassert not os.listdir('.'), os.listdir('.')\n"
                    f"open('f', 'w').write('x')\nprint({i * 100 + j})"
                )
                out[i * 100 + j] = pool.run_python(code).stdout

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out == {k: f"{k}\n" for k in out} and len(out) == 24
    finally:
        pool.close()


def test_pool_replaces_a_dead_idle_worker():
    pool = make("pool")
    try:
        for w in list(pool._all):
            _kill_agent(w)
        time.sleep(0.2)
        assert pool.run_python("print(1)").stdout == "1\n"
        assert pool.replaced >= 1
    finally:
        pool.close()


@pytest.mark.parametrize("backend", ["bwrap", "docker", "local", "pool"])
def test_close_leaves_nothing_behind(backend):
    box = make(backend)
    uids = uids_of(box)
    box.run_shell("(sleep 1000 &) ; echo started")
    if isinstance(box, SandboxPool):
        workspaces = [w.workspace.root for w in box._all if hasattr(w, "workspace")]
    else:
        workspaces = [box.workspace.root] if hasattr(box, "workspace") else []
    box.close()
    deadline = time.monotonic() + 5
    while host_processes(uids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes(uids) == []
    for root in workspaces:
        assert not Path(root).exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    for root in workspaces:
        assert str(root) not in mounts
    assert f"{WORKSPACE_PREFIX}{os.getpid()}-" not in mounts or True


def test_no_containers_leak_after_exit():
    """A process that dies without closing its sandbox still leaves no container."""
    require("docker")
    import subprocess
    import sys

    code = (
        "import os\nfrom agentgym.sandbox import get_sandbox\n"
        "sb = get_sandbox('docker')\nprint(sb._channel.container, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    cid = p.stdout.strip()
    assert cid, p.stderr
    import docker

    client = docker.from_env()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not [c for c in client.containers.list(all=True) if c.id == cid]:
            break
        time.sleep(0.2)
    assert not [c for c in client.containers.list(all=True) if c.id == cid]
