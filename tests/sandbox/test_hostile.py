"""Hostile code against every backend and the pool: contained, reported, host unharmed."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from agentgym.sandbox import SandboxPool

from .conftest import host_processes, isolating, limits, uids_of


def assert_clean_after(sb) -> None:
    """The next run works and the previous run left no process behind."""
    r = sb.run_python("print('still fine')")
    assert r.ok and r.stdout == "still fine\n", r
    deadline = time.monotonic() + 5
    while host_processes(uids_of(sb)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes(uids_of(sb)) == []


def need_isolation(sb, what: str) -> None:
    if not isolating(sb):
        pytest.skip(f"the local backend does not isolate {what} when not run as root")


def test_network_is_off(sb):
    need_isolation(sb, "the network")
    code = """
import socket
print("IFACES", sorted(n for _, n in socket.if_nameindex()))
for host, port in [("1.1.1.1", 53), ("deb.debian.org", 80), ("10.0.0.1", 80)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("CONNECTED", host)
    except OSError as e:
        print("BLOCKED", host, type(e).__name__)
"""
    r = sb.run_python(code)
    assert r.exit_code == 0, r
    assert "CONNECTED" not in r.stdout
    assert r.stdout.count("BLOCKED") == 3
    assert "IFACES ['lo']" in r.stdout
    assert_clean_after(sb)


def test_writes_outside_workspace_fail(sb, tmp_path):
    need_isolation(sb, "the file system")
    marker = f"agentgym-evil-{secrets.token_hex(4)}"
    targets = [
        tmp_path / marker,
        Path("/etc") / marker,
        Path("/usr/lib") / marker,
        Path.home() / marker,
        Path(__file__).resolve().parent / marker,
        Path("/") / marker,
    ]
    code = f"""
for p in {[str(t) for t in targets]!r}:
    try:
        with open(p, "w") as f:
            f.write("pwned")
        print("WROTE", p)
    except OSError as e:
        print("DENIED", p, type(e).__name__)
"""
    r = sb.run_python(code)
    for t in targets:
        assert not t.exists(), f"sandbox wrote {t} on the host"
    assert r.stdout.count("DENIED") + r.stdout.count("WROTE") == len(targets), r
    if sb.kind in ("bwrap", "docker", "pool"):
        assert "WROTE" not in r.stdout, r.stdout
    assert_clean_after(sb)


def test_host_secrets_are_invisible(sb, monkeypatch):
    need_isolation(sb, "host files")
    token = secrets.token_hex(16)
    env_token = secrets.token_hex(16)
    secret = Path.home() / f".agentgym-test-secret-{token[:8]}"
    secret.write_text(token)
    secret.chmod(0o600)
    monkeypatch.setenv("AGENTGYM_TEST_SECRET", env_token)
    try:
        code = f"""
import os, glob
print(dict(os.environ))
for p in [{str(secret)!r}, os.path.expanduser("~/.ssh/id_rsa"), "/proc/1/environ", "/etc/shadow"]:
    try:
        print(open(p).read())
    except OSError as e:
        print("NO", p, type(e).__name__)
for d in [{str(Path.home())!r}, os.path.expanduser("~")]:
    try:
        print(d, os.listdir(d))
    except OSError as e:
        print("NO", d, type(e).__name__)
"""
        r = sb.run_python(code)
        r2 = sb.run_shell(
            f"cat {secret} 2>&1; env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"
        )
    finally:
        secret.unlink()
    for res in (r, r2):
        assert token not in res.stdout + res.stderr
        assert env_token not in res.stdout + res.stderr
        assert "AGENTGYM_TEST_SECRET" not in res.stdout + res.stderr
    assert repr(secret.name) not in r.stdout  # not listed in the home directory
    assert_clean_after(sb)


def test_fork_bomb_is_contained(sb):
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    r = sb.run_python(code, limits=limits(wall_time_s=2, cpu_time_s=2))
    assert r.timed_out and not r.ok
    assert_clean_after(sb)


def test_shell_fork_bomb_is_contained(sb):
    r = sb.run_shell(":(){ :|:& };:; sleep 3", limits=limits(wall_time_s=2))
    assert not r.ok
    assert_clean_after(sb)


@pytest.mark.parametrize(
    "code",
    ["x = bytearray(8 * 1024 ** 3)", "l = []\nwhile True:\n    l.append(bytearray(10 ** 7))"],
    ids=["one-block", "growing"],
)
def test_memory_bomb_reports_oom(sb, code):
    r = sb.run_python(code)
    assert r.oom and not r.ok and r.exit_code != 0, r
    assert "MemoryError" in r.stderr
    assert_clean_after(sb)


def test_infinite_loop_times_out(sb):
    r = sb.run_python("while True:\n    pass", limits=limits(wall_time_s=1, cpu_time_s=30))
    assert r.timed_out and r.exit_code == -9 and not r.ok
    assert_clean_after(sb)


def test_cpu_spin_in_threads_hits_cpu_limit(sb):
    code = """
import threading
def spin():
    while True:
        pass
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
spin()
"""
    r = sb.run_python(code, limits=limits(wall_time_s=4, cpu_time_s=1))
    assert r.timed_out and not r.ok
    assert_clean_after(sb)


def test_huge_stdout_is_truncated(sb):
    r = sb.run_python(
        "import sys\nsys.stdout.write('x' * 50_000_000)\nprint('done', file=sys.stderr)"
    )
    assert r.exit_code == 0 and r.truncated
    assert r.stdout.startswith("x" * 4096)
    assert "output truncated" in r.stdout and len(r.stdout) < 4096 + 200
    assert r.stderr == "done\n"
    r = sb.run_shell("yes spam", limits=limits(wall_time_s=1))
    assert r.timed_out and r.truncated and len(r.stdout) < 4096 + 200
    assert_clean_after(sb)


def test_killing_the_parent_is_contained(sb):
    need_isolation(sb, "other processes")
    code = """
import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
        print("KILLED", pid)
    except OSError as e:
        print("DENIED", pid, type(e).__name__)
"""
    r = sb.run_python(code)
    assert "DENIED" in r.stdout or r.exit_code == -9, r
    assert f"KILLED {os.getpid()}" not in r.stdout
    assert_clean_after(sb)


def test_sleep_past_timeout(sb):
    r = sb.run_python(
        "import time\nprint('before', flush=True)\ntime.sleep(60)", limits=limits(wall_time_s=1)
    )
    assert r.timed_out and r.exit_code == -9 and r.stdout == "before\n"
    assert_clean_after(sb)


def test_children_left_running_are_killed(sb):
    code = """
import os, subprocess, sys
subprocess.Popen(["sleep", "1000"], start_new_session=True)
if os.fork() == 0:          # classic daemon: double fork + setsid
    os.setsid()
    if os.fork() == 0:
        import time
        time.sleep(1000)
    os._exit(0)
os.system("(sleep 1000 &)")
print("spawned")
"""
    r = sb.run_python(code)
    assert r.ok and r.stdout == "spawned\n", r
    assert_clean_after(sb)
    ps = sb.run_shell(
        "ls /proc | grep -c '^[0-9]' ; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"
    )
    assert "sleep 1000" not in ps.stdout


def test_filling_the_disk_is_bounded(sb):
    ws = getattr(sb, "workspace", None)
    if sb.kind in ("local", "bwrap") and not (ws is not None and ws.mounted):
        pytest.skip("workspace is not a bounded tmpfs here (needs root)")
    if sb.kind == "pool":
        w = next(iter(sb._all))
        if not getattr(getattr(w, "workspace", None), "mounted", True):
            pytest.skip("workspace is not a bounded tmpfs here (needs root)")
    # The local backend is not isolation: /tmp there is the host's own, so only its
    # (bounded) workspace is filled; the isolating backends get a private bounded /tmp.
    dirs = '(".",)' if sb.kind == "local" else '(".", "/tmp")'
    code = f"""
import os
total = 0
for d in {dirs}:
    for i in range(10_000):
        try:
            with open(os.path.join(d, f"fill{{i}}"), "wb") as f:
                f.write(b"x" * (1 << 20))
            total += 1
        except OSError:
            break
print("MB", total)
"""
    try:
        r = sb.run_python(code, limits=limits(wall_time_s=20, file_size_mb=2))
    finally:
        if not isinstance(sb, SandboxPool):
            sb.run_shell("rm -f fill* /tmp/fill*")
    assert not r.timed_out, r
    mb = int(r.stdout.split()[-1])
    assert 0 < mb <= 2 * 32 + 2, r.stdout  # workspace and /tmp: 32 MiB each at most
    if isinstance(sb, SandboxPool):
        assert sb.run_shell("ls | wc -l").stdout.strip() == "0"
    assert_clean_after(sb)


def test_single_file_size_limit(sb):
    code = """
try:
    with open("big", "wb") as f:
        for _ in range(100):
            f.write(b"x" * (1 << 20))
    print("WROTE")
except OSError as e:
    print("STOPPED", e.errno)
"""
    r = sb.run_python(code, limits=limits(file_size_mb=2))
    assert "WROTE" not in r.stdout and ("STOPPED 27" in r.stdout or r.exit_code == -25), r
    sb.run_shell("rm -f big")
    assert_clean_after(sb)
