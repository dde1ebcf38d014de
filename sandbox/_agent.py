"""The in-sandbox agent: receives requests, forks one jailed process per task.

This file runs *inside* the sandbox (bwrap, a Docker container, or a local
subprocess) with only the standard library, so it must not import agentgym.
It speaks length-prefixed JSON frames on its stdin/stdout. Each task runs in a
fresh fork of the pristine agent (so a snippet costs a fork, not an interpreter
start-up), in its own session, with rlimits, under an unprivileged uid when the
agent is root. After the task, every process it left behind is killed.

Usage: ``python -I _agent.py --workspace DIR --uid N [--serve]``.
"""

from __future__ import annotations

# Loaded here, once, so that every forked task finds them already imported.
import atexit  # noqa: F401
import base64
import ctypes
import errno
import json
import linecache  # noqa: F401
import os
import resource
import select
import shutil
import signal
import struct
import sys
import threading  # noqa: F401
import time
import traceback
import types  # noqa: F401

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
CLONE_NEWNET = 0x40000000
MAX_FRAME = 1 << 30
TRACE_CHARS = 2000
MARKER = "\n...[agentgym: output truncated, {n} more bytes dropped]\n"


def read_frame(fd):
    """Read one frame; None on clean EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = _read_exact(fd, n)
    if body is None:
        raise EOFError("truncated frame")
    return json.loads(body.decode("utf-8"))


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            if buf:
                raise EOFError("truncated frame")
            return None
        buf += chunk
    return buf


def write_frame(fd, obj):
    """Write one frame."""
    body = json.dumps(obj).encode("utf-8")
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


# ---------------------------------------------------------------- the jail


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _enter_jail(state, limits, task_env):
    """In the forked child: limits, no network, unprivileged uid, clean env."""
    if not limits.get("network") and os.geteuid() == 0 and state["can_unshare_net"]:
        if _libc().unshare(CLONE_NEWNET) != 0:
            os._exit(_bail("could not unshare the network namespace"))
    mem = int(limits["memory_mb"]) << 20
    cpu = max(1, int(limits["cpu_time_s"] + 0.999))
    fsize = int(limits["file_size_mb"]) << 20
    nproc = int(limits["max_processes"])
    for res, val in (
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (fsize, fsize)),
        (resource.RLIMIT_NPROC, (nproc, nproc)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (256, 256)),
    ):
        resource.setrlimit(res, val)
    uid = state["uid"]
    if uid > 0 and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    try:  # make this process the OOM killer's first choice, never the agent
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    os.chdir(state["workspace"])
    os.environ.clear()
    os.environ.update(task_env)
    os.umask(0o022)


def _bail(msg):
    try:
        os.write(2, ("agentgym sandbox: " + msg + "\n").encode())
    except OSError:
        pass
    return 125


# ---------------------------------------------------------------- task bodies


def _exit_status(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except Exception:
        pass
    return 1


def _fresh_main(workspace):

    mod = types.ModuleType("__main__")
    sys.modules["__main__"] = mod
    sys.argv = ["-c"]
    sys.path.insert(0, workspace)
    return mod.__dict__


def _register_source(name, code):

    linecache.cache[name] = (len(code), None, code.splitlines(True), name)


def _format_exc(e, limit_chars=TRACE_CHARS):
    tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
    text = "".join(traceback.format_exception(type(e), e, tb))
    if len(text) > limit_chars:
        text = "...\n" + text[-limit_chars:]
    return text


def _finish(rc):
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    try:
        import threading

        threading._shutdown()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(rc)


def _run_python(req, state, status_fd):
    g = _fresh_main(state["workspace"])
    code = req["code"]
    rc = 0
    try:
        _register_source("<string>", code)
        exec(compile(code, "<string>", "exec"), g)
    except SystemExit as e:
        rc = _exit_status(e)
    except MemoryError as e:
        g.clear()
        os.write(status_fd, b'{"oom": true}\n')
        sys.stderr.write(_format_exc(e))
        rc = 1
    except BaseException as e:
        sys.stderr.write(_format_exc(e))
        rc = 1
    _finish(rc)


def _run_one_test(name, src, g):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            _register_source(f"<test:{name}>", src)
            exec(compile(src, f"<test:{name}>", "exec"), g)
            msg = {"passed": True}
        except SystemExit as e:
            msg = {"passed": False, "error": f"test exited early (SystemExit {e.code!r})"}
        except BaseException as e:
            msg = {"passed": False, "error": _format_exc(e)}
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os.write(w, json.dumps(msg).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, st = os.waitpid(pid, 0)
    try:
        msg = json.loads(data.decode())
    except ValueError:
        how = f"signal {os.WTERMSIG(st)}" if os.WIFSIGNALED(st) else "exit"
        msg = {"passed": False, "error": f"test process ended ({how}) before finishing"}
    msg["name"] = name
    return msg


def _run_tests(req, state, status_fd):
    g = _fresh_main(state["workspace"])
    code = req["code"]
    failure = None
    try:
        _register_source("<solution>", code)
        exec(compile(code, "<solution>", "exec"), g)
    except SystemExit as e:
        if _exit_status(e) != 0:
            failure = f"solution exited with status {_exit_status(e)}"
    except MemoryError as e:
        g.clear()
        os.write(status_fd, b'{"oom": true}\n')
        failure = _format_exc(e)
    except BaseException as e:
        failure = _format_exc(e)
    if failure:
        sys.stderr.write(failure)
    for name, src in req["tests"]:
        if failure is not None:
            msg = {"name": name, "passed": False, "error": "solution failed:\n" + failure}
        else:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            msg = _run_one_test(name, src, g)
        os.write(status_fd, (json.dumps({"test": msg}) + "\n").encode())
    _finish(0 if failure is None else 1)


def _child(req, state, fds, task_env):
    """Body of the forked task process; never returns."""
    try:
        in_r, out_w, err_w, st_w = fds
        os.setsid()
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(st_w, 3)
        os.closerange(4, 1 << 16)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _enter_jail(state, req["limits"], task_env)
        if req["kind"] == "shell":
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve("/bin/sh", ["/bin/sh", "-c", req["code"]], task_env)
        elif req["kind"] == "python":
            _run_python(req, state, 3)
        else:
            _run_tests(req, state, 3)
    except BaseException as e:
        _bail(f"task set-up failed: {e!r}")
    os._exit(125)


# ---------------------------------------------------------------- the parent side


class _Sink:
    def __init__(self, cap):
        self.cap = cap
        self.buf = bytearray()
        self.dropped = 0

    def add(self, data):
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))

    def text(self):
        s = self.buf.decode("utf-8", errors="replace")
        return s + MARKER.format(n=self.dropped) if self.dropped else s


def _oom_kills():
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return 0


def _kill_leftovers(state, pgid, wipe=False):
    """Kill every process the task left: its group, its uid, our other children.

    With ``wipe``, also empty the workspace and scratch dirs in the same helper.
    """
    dropped = state["uid"] > 0 and os.geteuid() == 0
    for _ in range(50):
        if pgid > 0:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        kids, by_uid = _scan(state["uid"])
        if dropped and by_uid:
            _as_task_user(state, _kill_all_then(None))
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap()
        if not kids and not by_uid:
            break
        time.sleep(0.002)
    if wipe:
        _wipe_now(state)


def _wipe_now(state):
    """Empty the workspace and scratch dirs once every task process is dead.

    With no task process left nothing can race us, and rmtree never follows
    symlinks, so the agent may do it itself when it can (root with
    CAP_DAC_OVERRIDE, or the same uid); otherwise a helper under the task uid.
    """
    try:
        _wipe(_dirs(state))()
    except OSError:
        _as_task_user(state, _wipe(_dirs(state)))


def _dirs(state):
    return [state["workspace"]] + state["scratch"]


def _kill_all_then(then):
    """As the task uid: SIGKILL every process of that uid (not us), then ``then()``."""

    def fn():
        for _ in range(1000):
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError as e:
                if e.errno == errno.ESRCH:
                    break
        return then() if then else None

    return fn


def _scan(uid):
    """Our live children and the live processes of ``uid``, from /proc."""
    me = str(os.getpid())
    kids, by_uid = [], []
    try:
        names = os.listdir("/proc")
    except OSError:
        return kids, by_uid
    for name in names:
        if not name.isdigit() or name == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            st_uid = os.stat("/proc/" + name).st_uid if uid > 0 else -2
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 2 or fields[0] == "Z":
            continue
        if fields[1] == me:
            kids.append(int(name))
        elif st_uid == uid:
            by_uid.append(int(name))
    return kids, by_uid


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _pump(fds, child, deadline, sinks, status):
    """Read the task's pipes until it exits or the deadline passes."""
    out_r, err_r, st_r = fds
    open_fds = {out_r: sinks[0], err_r: sinks[1], st_r: status}
    exit_status = None
    timed_out = False
    pidfd = _pidfd(child)
    try:
        while True:
            exit_status, done, timed_out = _pump_once(child, pidfd, open_fds, exit_status, deadline)
            if done:
                break
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return exit_status, timed_out, open_fds


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _pump_once(child, pidfd, open_fds, exit_status, deadline):
    """One wait: returns (exit_status, done, timed_out)."""
    if True:
        if exit_status is None:
            pid, st = os.waitpid(child, os.WNOHANG)
            if pid:
                exit_status = st
        if exit_status is not None:
            wait = 0.0
        else:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return exit_status, True, True
            wait = min(wait, 0.05 if pidfd is not None else 0.005)
        watch = list(open_fds)
        if exit_status is None and pidfd is not None:
            watch.append(pidfd)
        ready = select.select(watch, [], [], wait)[0] if watch else []
        if not watch and wait:
            time.sleep(wait)
        got = False
        for fd in ready:
            if fd == pidfd:
                continue
            got = True
            chunk = os.read(fd, 65536)
            if chunk:
                open_fds[fd].add(chunk)
            else:
                del open_fds[fd]
        return exit_status, exit_status is not None and not got, False


def _feed_stdin(fd, data):

    def run():
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            pass
        finally:
            os.close(fd)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def run_task(req, state):
    """Fork, jail and supervise one task; returns the response dict."""
    limits = req["limits"]
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    oom_before = _oom_kills()
    t0 = time.monotonic()
    child = os.fork()
    if child == 0:
        _child(req, state, (in_r, out_w, err_w, st_w), state["env"])
    for fd in (in_r, out_w, err_w, st_w):
        os.close(fd)
    stdin = (req.get("stdin") or "").encode("utf-8")
    feeder = _feed_stdin(in_w, stdin) if stdin else None
    if feeder is None:
        os.close(in_w)
    cap = int(limits["output_bytes"])
    sinks = (_Sink(cap), _Sink(cap))
    status = _Sink(1 << 20)
    deadline = t0 + float(limits["wall_time_s"])
    exit_status, timed_out, still_open = _pump((out_r, err_r, st_r), child, deadline, sinks, status)
    duration = time.monotonic() - t0
    if exit_status is None:
        try:
            os.killpg(child, signal.SIGKILL)
        except OSError:
            os.kill(child, signal.SIGKILL)
        _, exit_status = os.waitpid(child, 0)
    _kill_leftovers(state, child, wipe=bool(req.get("reset")))
    for fd in list(still_open):  # after the kill: read what is left, EOF comes now
        while select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            still_open[fd].add(chunk)
    for fd in (out_r, err_r, st_r):
        os.close(fd)
    if feeder is not None:
        feeder.join(1.0)
    return _response(exit_status, timed_out, duration, sinks, status, oom_before)


def _response(exit_status, timed_out, duration, sinks, status, oom_before):
    if os.WIFSIGNALED(exit_status):
        code = -os.WTERMSIG(exit_status)
    else:
        code = os.WEXITSTATUS(exit_status)
    oom = False
    tests = []
    for line in status.buf.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            oom = oom or msg.get("oom") is True
            if isinstance(msg.get("test"), dict):
                tests.append(msg["test"])
    if code == -signal.SIGKILL and not timed_out and _oom_kills() > oom_before:
        oom = True
    cpu_limit = code in (-signal.SIGXCPU,)
    return {
        "stdout": sinks[0].text(),
        "stderr": sinks[1].text(),
        "exit_code": code,
        "timed_out": bool(timed_out or cpu_limit),
        "oom": oom,
        "duration_s": duration,
        "truncated": bool(sinks[0].dropped or sinks[1].dropped),
        "tests": tests,
    }


# ---------------------------------------------------------------- files


def _as_task_user(state, fn):
    """Run ``fn`` in a child under the task uid (so symlinks cannot reach root's files)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            uid = state["uid"]
            if uid > 0 and os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            os.chdir(state["workspace"])
            out = {"ok": True, "value": fn()}
        except FileNotFoundError as e:
            out = {"ok": False, "kind": "notfound", "error": str(e)}
        except BaseException as e:
            out = {"ok": False, "kind": "error", "error": f"{type(e).__name__}: {e}"}
        data = json.dumps(out).encode()
        while data:
            data = data[os.write(w, data) :]
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        c = os.read(r, 1 << 20)
        if not c:
            break
        chunks.append(c)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks).decode())
    except ValueError:
        return {"ok": False, "kind": "error", "error": "file helper died"}


def _safe_rel(path):
    if os.path.isabs(path) or ".." in path.split("/") or not path.strip("/"):
        raise ValueError(f"path must be relative to the workspace without '..': {path!r}")
    return path


def _put(path, data):
    def fn():
        p = _safe_rel(path)
        d = os.path.dirname(p)
        if d:
            os.makedirs(d, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
        return None

    return fn


def _get(path):
    def fn():
        fd = os.open(_safe_rel(path), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return base64.b64encode(f.read()).decode()

    return fn


def _wipe(dirs):
    def onerror(func, p, exc):
        os.chmod(os.path.dirname(p), 0o700)
        os.chmod(p, 0o700)
        func(p)

    def fn():
        for d in dirs:
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                p = os.path.join(d, name)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, onerror=onerror)
                else:
                    os.unlink(p)
        return None

    return fn


def handle(req, state):
    """Serve one request."""
    op = req.get("op")
    if op == "exec":
        return run_task(req, state)
    if op == "put":
        return _as_task_user(state, _put(req["path"], req["data"]))
    if op == "get":
        return _as_task_user(state, _get(req["path"]))
    if op == "reset":
        _kill_leftovers(state, 0)
        _wipe_now(state)
        return {"ok": True}
    if op == "ping":
        return {"ok": True, "pid": os.getpid(), "uid": state["uid"]}
    return {"ok": False, "kind": "error", "error": f"unknown op {op!r}"}


def _prepare(args):
    state = {"workspace": "/workspace", "uid": -1, "scratch": [], "env": {}}
    state["can_unshare_net"] = False
    it = iter(args)
    serve = False
    for a in it:
        if a == "--serve":
            serve = True
        elif a == "--workspace":
            state["workspace"] = next(it)
        elif a == "--uid":
            state["uid"] = int(next(it))
        elif a == "--scratch":
            state["scratch"].append(next(it))
        elif a == "--netns":
            state["can_unshare_net"] = True
        elif a == "--chown":
            uid = state["uid"]
            for d in [state["workspace"]] + state["scratch"]:
                os.chmod(d, 0o700)
                os.chown(d, uid, uid)
    tmp = state["scratch"][0] if state["scratch"] else "/tmp"
    pybin = os.path.dirname(sys.executable)
    state["env"] = {
        "PATH": pybin + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": state["workspace"],
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    return state, serve


def main(argv=None):
    """Agent entry point."""
    state, serve = _prepare(sys.argv[1:] if argv is None else argv)
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    os.environ.clear()
    os.environ.update(state["env"])
    try:
        _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:  # if whoever started us dies, clean up and go
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        _serve(state, serve, proto_in, proto_out)
    finally:
        _kill_leftovers(state, 0)


def _serve(state, serve, proto_in, proto_out):
    while True:
        try:
            req = read_frame(proto_in)
        except (EOFError, OSError):
            break
        if req is None:
            break
        try:
            resp = handle(req, state)
        except Exception as e:  # report, never die silently
            resp = {"ok": False, "kind": "agent", "error": _format_exc(e)}
        try:
            write_frame(proto_out, resp)
        except OSError:
            break
        if not serve:
            break


if __name__ == "__main__":
    main()
