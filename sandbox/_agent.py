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

import _signal as signal  # the C module: `signal` would import enum

# Only what every start needs: a one-shot agent lives for one call. A serving
# agent preloads the rest (PRELOAD) so that its forks find them imported.
import binascii
import builtins
import ctypes
import errno
import fcntl
import os
import resource
import select
import struct
import sys
import time

PRELOAD = ("linecache", "traceback", "shutil")  # not threading: its fork hook costs every fork

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
CLONE_NEWNET = 0x40000000
MAX_FRAME = 1 << 30
DRAIN_S = 0.25
TRACE_CHARS = 2000
MARKER = "\n...[agentgym: output truncated, {n} more bytes dropped]\n"
MAX_REPLY = 1 << 28  # bytes of one reply from the submission's process

# Bound now: the submission's process runs our call loop after its own code, which
# may have patched these modules. (A patch can still break that loop, and so only
# fail its own tests; the verdict never depends on it.)
_exit, _fork, _waitpid = os._exit, os.fork, os.waitpid
_read, _write = os.read, os.write


def _json_codec():
    """JSON through the C accelerator directly, without ``import json``.

    That import pulls in ``re``, which costs a one-shot agent more than the rest
    of its start-up.
    """
    try:
        import _json

        class Ctx:
            strict = True
            object_hook = object_pairs_hook = None
            parse_float, parse_int = float, int
            parse_constant = {"NaN": 1e999 - 1e999, "Infinity": 1e999, "-Infinity": -1e999}.get
            memo = {}  # type: ignore[var-annotated]

        scan = _json.make_scanner(Ctx())
        enc = _json.make_encoder(
            None, None, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
    except (ImportError, AttributeError, TypeError):
        import json

        return json.dumps, json.loads

    def dumps(obj):
        return "".join(enc(obj, 0))

    def loads(s):
        try:
            obj, end = scan(s, 0)
        except StopIteration:
            raise ValueError("not JSON") from None
        if end != len(s):
            raise ValueError("extra data after JSON")
        return obj

    return dumps, loads


_dumps, _loads = _json_codec()


def read_frame(fd, max_size=MAX_FRAME):
    """Read one frame; None on clean EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > max_size:
        raise ValueError(f"frame of {n} bytes is over the limit")
    body = _read_exact(fd, n)
    if body is None:
        raise EOFError("truncated frame")
    return _loads(body.decode("utf-8"))


def _read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        chunk = _read(fd, min(n - got, 1 << 20))
        if not chunk:
            if got:
                raise EOFError("truncated frame")
            return None
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def write_frame(fd, obj):
    """Write one frame."""
    body = _dumps(obj).encode("utf-8")
    data = len(body).to_bytes(4, "big") + body
    while data:
        data = data[_write(fd, data) :]


# ---------------------------------------------------------------- the jail


_LIBC: list = []


def _libc():
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def _enter_jail(state, limits, task_env, uid=None, cwd=None):
    """In the forked child: limits, no network, unprivileged uid, clean env."""
    _jail_setup(state, task_env, uid, cwd, bool(limits.get("network")))
    _jail_limits(limits)


def _switch_uid(uid):
    """Become ``uid`` for good (when we are root), still dying with our parent."""
    if uid > 0 and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _die_with_parent()  # a uid change clears it


def _jail_setup(state, task_env, uid=None, cwd=None, network=False, switch=True):
    """Everything of the jail but the per-call limits: no network, uid, directory, env."""
    if not network and os.geteuid() == 0 and state["can_unshare_net"]:
        if _libc().unshare(CLONE_NEWNET) != 0:
            os._exit(_bail("could not unshare the network namespace"))
    if switch:
        _switch_uid(state["uid"] if uid is None else uid)
    try:  # make this process the OOM killer's first choice, never the agent
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass
    os.chdir(state["workspace"] if cwd is None else cwd)
    os.environ.clear()
    os.environ.update(task_env)
    os.umask(0o022)
    _die_with_parent()


def _jail_limits(limits):
    """The per-call rlimits (lowered only: this may run after the uid switch)."""
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
        hard = resource.getrlimit(res)[1]
        if hard != resource.RLIM_INFINITY:
            val = (min(val[0], hard), min(val[1], hard))
        resource.setrlimit(res, val)


def _die_with_parent():
    """SIGKILL when our parent dies (set after the uid switch, which clears it)."""
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


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

    mod = type(sys)("__main__")
    sys.modules["__main__"] = mod
    sys.argv = ["-c"]
    sys.path.insert(0, workspace)
    return mod.__dict__


_SOURCES: dict = {}


def _register_source(name, code):
    """Remember ``code`` for tracebacks (linecache is loaded only when one is shown)."""
    _SOURCES[name] = code


def _format_exc(e, limit_chars=TRACE_CHARS):
    import linecache
    import traceback

    for name, code in _SOURCES.items():
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
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
        threading = sys.modules.get("threading")
        if threading is not None and threading.active_count() > 1:
            threading._shutdown()  # join the code's non-daemon threads, as Python would
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
        _task_body(req, state, task_env)
    except BaseException as e:
        _bail(f"task set-up failed: {e!r}")
    os._exit(125)


def _task_body(req, state, task_env):
    if req["kind"] == "shell":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execve("/bin/sh", ["/bin/sh", "-c", req["code"]], task_env)
    _run_python(req, state, 3)


# A serving agent forks the next task's process ahead of time, once the previous
# task is cleaned up and answered: jailed but for the per-call limits, it waits
# for its request on fd 4, so a call costs a pipe write instead of fork and jail.
# It is a fresh fork of the pristine agent like any other, used for one task only,
# and takes the task's uid only with its request (no task process lingers).


def _spare_fork(state):
    pipes = [os.pipe() for _ in range(5)]  # stdin, stdout, stderr, status, control
    pid = os.fork()
    if pid == 0:
        try:
            (in_r, _), (_, out_w), (_, err_w), (_, st_w), (ctl_r, _) = pipes
            os.setsid()
            _place([(in_r, 0), (out_w, 1), (err_w, 2), (st_w, 3), (ctl_r, 4)], 5)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _jail_setup(state, state["env"], switch=False)  # no process of the task uid yet
            req = read_frame(4)
            if req is None:
                os._exit(0)
            os.close(4)
            _switch_uid(state["uid"])
            _jail_limits(req["limits"])
            _task_body(req, state, state["env"])
        except BaseException as e:
            _bail(f"task set-up failed: {e!r}")
        os._exit(125)
    (in_r, in_w), (out_r, out_w), (err_r, err_w), (st_r, st_w), (ctl_r, ctl_w) = pipes
    for fd in (in_r, out_w, err_w, st_w, ctl_r):
        os.close(fd)
    state["spare"] = {"pid": pid, "fds": (in_w, out_r, err_r, st_r), "ctl": ctl_w}


def _drop_spare(state):
    spare = state.pop("spare", None)
    if spare is None:
        return
    try:
        os.kill(spare["pid"], signal.SIGKILL)
        os.waitpid(spare["pid"], 0)
    except OSError:
        pass
    for fd in (*spare["fds"], spare["ctl"]):
        os.close(fd)


def _use_spare(state, req):
    """Hand ``req`` to the spare process: ``(pid, (in_w, out_r, err_r, st_r))`` or None."""
    spare = state.get("spare")
    if spare is None or req["limits"].get("network"):
        _drop_spare(state)
        return None
    state.pop("spare")
    try:
        write_frame(spare["ctl"], {k: v for k, v in req.items() if k != "stdin"})
    except OSError:  # it died: start a task the usual way
        state["spare"] = spare
        _drop_spare(state)
        return None
    os.close(spare["ctl"])
    return spare["pid"], spare["fds"]


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


def _kill_leftovers(state, pgid, wipe=False, quiet=False):
    """Kill every process the task left: its group, its uid, our other children.

    With ``wipe``, also empty the workspace and scratch dirs in the same helper.
    """
    dropped = state["uid"] > 0 and os.geteuid() == 0
    if pgid > 0:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    _reap()
    if quiet and state.get("subreaper") and _children() == []:
        # every process a task starts stays our descendant (we are a subreaper), so
        # after a task that ended by itself, no live child means nothing is left:
        # skip the scan of /proc (a task killed mid-fork-bomb gets the full sweep)
        if wipe:
            _wipe_now(state)
        return
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


def _children():
    """Our live and zombie children from /proc (None when the kernel cannot say)."""
    out = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return None
    return out


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
    drain_until = None  # output still coming after the exit is read this long, no longer
    try:
        while True:
            exit_status, done, timed_out = _pump_once(child, pidfd, open_fds, exit_status, deadline)
            if done:
                break
            if exit_status is not None:
                now = time.monotonic()
                drain_until = drain_until or min(deadline, now + DRAIN_S)
                if now > drain_until:
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

    import threading

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def run_task(req, state):
    """Fork, jail and supervise one task; returns the response dict."""
    limits = req["limits"]
    oom_before = _oom_kills()
    t0 = time.monotonic()
    ready = _use_spare(state, req)
    if ready is not None:
        child, (in_w, out_r, err_r, st_r) = ready
    else:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
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
    quiet = exit_status is not None and not timed_out  # it ended by itself
    if exit_status is None:
        try:
            os.killpg(child, signal.SIGKILL)
        except OSError:
            os.kill(child, signal.SIGKILL)
        _, exit_status = os.waitpid(child, 0)
    _kill_leftovers(state, child, wipe=bool(req.get("reset")), quiet=quiet)
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
            msg = _loads(line)
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


# ---------------------------------------------------------------- grading
#
# run_tests never lets the submission near the verdict. Two processes are forked
# from this pristine agent: the *candidate* (C) loads the submission and answers
# calls; the *grader* (G) runs the test snippets, in which the names the tests
# take from the submission are remote handles, so ``candidate(x)`` sends ``x`` to
# C, C calls the real function in a fresh fork of the loaded program (one per
# test) and sends the result back as tagged JSON, and G rebuilds it as exact
# builtin values before the test compares anything. G runs under its own uid
# (when the agent is root), is not dumpable, has no file descriptor C holds but
# the two call pipes, and is the only writer of the verdict pipe. The tests are
# read from the host after both forks and never enter C's memory.

PLAIN = (
    "expected plain data (None, bool, int, float, complex, str, bytes, and lists, "
    "tuples, dicts and sets of these)"
)
MAX_DEPTH = 100
BIG_INT_BITS = 8000
CALL_FAILED = 126


class _NotPlain(Exception):
    pass


def _enc(x, handles, depth=0):
    """C side: ``x`` as tagged JSON; non-plain values become handles (a list) or fail."""
    t = type(x)
    if x is None or t is bool or t is str or t is float:
        return x
    if t is int:
        return x if x.bit_length() < BIG_INT_BITS else {"i": format(x, "x")}
    if depth > MAX_DEPTH:
        raise _NotPlain(f"returned data nested more than {MAX_DEPTH} levels deep")
    d = depth + 1
    if t is list:
        return [_enc(v, handles, d) for v in x]
    if t is tuple:
        return {"t": [_enc(v, handles, d) for v in x]}
    if t is dict:
        return {"d": [[_enc(k, handles, d), _enc(v, handles, d)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "z": [_enc(v, handles, d) for v in x]}
    if t is bytes:
        return {"b": binascii.b2a_base64(x, newline=False).decode()}
    if t is complex:
        return {"c": [x.real, x.imag]}
    if handles is not None:
        handles.append(x)
        return {"h": len(handles) - 1}
    raise _NotPlain(f"returned an object of type {t.__name__}; {PLAIN}")


_NATIVE = (type(None), bool, int, float, str)


def _is_plain(x):
    try:
        _enc(x, None)
    except (_NotPlain, RecursionError):
        return False
    return True


def _dec(v, handle, depth=0):
    """G side (and C's reading of arguments): tagged JSON back to exact builtins.

    Anything that is not the output of ``_enc`` raises ``_NotPlain``.
    """
    t = type(v)
    if t in _NATIVE:
        return v
    if depth > MAX_DEPTH + 2:
        raise _NotPlain("sent data nested too deeply")
    d = depth + 1
    if t is list:
        return [_dec(e, handle, d) for e in v]
    if t is dict and len(v) == 1:
        ((k, e),) = v.items()
        te = type(e)
        if te is list:
            if k == "t":
                return tuple(_dec(x, handle, d) for x in e)
            if k == "d":
                out = {}
                for pair in e:
                    if type(pair) is not list or len(pair) != 2:
                        raise _NotPlain("sent a malformed dict")
                    out[_dec(pair[0], handle, d)] = _dec(pair[1], handle, d)
                return out
            if k == "s":
                return {_dec(x, handle, d) for x in e}
            if k == "z":
                return frozenset(_dec(x, handle, d) for x in e)
            if k == "c" and len(e) == 2 and all(type(x) in (int, float) for x in e):
                return complex(e[0], e[1])
        if k == "i" and te is str:
            return int(e, 16)
        if k == "b" and te is str:
            return binascii.a2b_base64(e.encode("ascii"))
        if k == "h" and te in (int, str) and handle is not None:
            return handle(e)
    raise _NotPlain("sent data that is not plain")


def _exc_reply(e):
    """How an exception raised by the submission travels: its nearest builtin class."""
    name = "Exception"
    for k in type(e).__mro__:
        if k.__module__ == "builtins" and issubclass(k, Exception):
            name = k.__name__
            break
    if not isinstance(e, Exception):
        name = "exit"
    try:
        msg = str(e)[:TRACE_CHARS]
    except BaseException:
        msg = "(unprintable)"
    try:
        trace = _format_exc(e)
    except BaseException:
        trace = ""
    return {"e": name, "m": msg, "tb": trace}


# -- the candidate (C): the submission's process ---------------------------------


def _candidate(req, state, rd, wr):
    """Load the submission, then serve each test in a fresh fork of it; never returns."""
    g = _fresh_main(state["workspace"])
    failure = None
    oom = False
    try:
        for name, src in (("<setup>", req.get("setup") or ""), ("<solution>", req["code"])):
            _register_source(name, src)
            exec(compile(src, name, "exec"), g)
    except SystemExit as e:
        if _exit_status(e) != 0:
            failure = f"your program exited with status {_exit_status(e)} while loading"
    except MemoryError as e:
        g.clear()
        oom, failure = True, _format_exc(e)
    except BaseException as e:
        failure = _format_exc(e)
    if failure:
        sys.stderr.write(failure)
    _flush()
    write_frame(wr, {"loaded": failure is None, "error": failure, "oom": oom})
    live = bool(req.get("live"))
    while True:
        msg = read_frame(rd)
        if msg is None or msg.get("op") == "quit":
            _exit(0 if failure is None else 1)
        if msg.get("op") != "test" or failure is not None:
            continue
        pid = _fork()
        if pid == 0:
            _serve_test(g, rd, wr, msg, live)
        _, st = _waitpid(pid, 0)
        try:
            write_frame(wr, {"ended": _describe_status(st)})
        except OSError:  # the grader is done and gone
            _exit(0 if failure is None else 1)


def _describe_status(st):
    if os.WIFSIGNALED(st):
        return f"killed by signal {os.WTERMSIG(st)}"
    return f"exited with status {os.WEXITSTATUS(st)}"


_OPS = {
    "len": len,
    "iter": list,
    "str": str,
    "repr": repr,
    "contains": lambda o, k: k in o,
    "getitem": lambda o, k: o[k],
    "setitem": lambda o, k, v: o.__setitem__(k, v),
    "delitem": lambda o, k: o.__delitem__(k),
}


def _serve_test(g, rd, wr, msg, live):
    """In a fork of the loaded submission: answer one test's calls; never returns."""
    _die_with_parent()
    handles = []
    grow = handles if live else None  # where non-plain results may go

    def resolve(ref):
        """A handle by number, or a global of the program by name."""
        if type(ref) is int:
            return handles[ref]
        if type(ref) is str and ref in g:
            return g[ref]
        raise NameError(f"name {ref!r} is not defined")

    try:
        while True:
            req = read_frame(rd)
            if req is None or req.get("op") == "end":
                _flush()
                _exit(0)
            reply = _answer(req, resolve, grow)
            _flush()
            write_frame(wr, reply)
    except BaseException:
        pass
    _exit(CALL_FAILED)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _answer(req, resolve, grow):
    """Run one remote operation on a handle; the reply is plain data, a handle or an error."""
    try:
        obj = resolve(req["h"])
        args = _dec(req.get("a", []), resolve)
        op = req["op"]
        if op in ("value", "peek"):  # the object itself, as plain data (never a handle)
            if op == "peek" and not _is_plain(obj):
                return {"nv": True}
            grow = None
            result = obj
        elif op == "call":
            kw = _dec(req.get("k", {"d": []}), resolve)
            result = obj(*args, **kw)
        elif op == "getattr":
            result = getattr(obj, args[0])
        else:
            result = _OPS[op](obj, *args)
    except BaseException as e:
        return _exc_reply(e)
    try:
        reply = {"v": _enc(result, grow)}
    except _NotPlain as e:
        return {"np": str(e)}
    except RecursionError:
        return {"np": f"returned data nested too deeply; {PLAIN}"}
    if op == "call":  # arguments changed in place travel back
        changed = {}
        for i, a in enumerate(args):
            if type(a) in (list, dict, set):
                try:
                    changed[str(i)] = _enc(a, None)
                except (_NotPlain, RecursionError):
                    pass
        if changed:
            reply["a"] = changed
    return reply


# -- the grader (G): never runs submitted code -------------------------------------


class _Tainted(BaseException):
    """Raised in a test when the submission broke the rules; no test catches it."""


class _Link:
    """G's end of the call pipes, for one test at a time."""

    def __init__(self, wr, rd, live):
        self.wr, self.rd, self.live = wr, rd, live
        self.up = False  # a test fork of C is answering
        self.taint = None
        self.broken = False
        self.ending = False  # an "end" was sent; C's "ended" is still to be read
        self._sent_args = ()

    def begin(self):
        """Start a test: its fork of the program is made as the request arrives.

        Not waited for: C answers its first call, or says it ended instead.
        """
        if self.ending:  # the previous test's fork must be gone first
            self.ending = False
            for _ in range(64):
                if "ended" in self.recv():
                    break
            else:
                self.broken = True
                raise self._bad("your program's process broke the call protocol")
        write_frame(self.wr, {"op": "test"})
        self.up = True

    def recv(self):
        try:
            msg = read_frame(self.rd, MAX_REPLY)
        except (ValueError, EOFError, RecursionError, MemoryError) as e:
            self.up = False
            self.broken = True
            raise self._bad(f"your program's process broke the call protocol ({e})") from None
        if msg is None:
            self.up = False
            raise self._bad("your program's process ended during the tests")
        if not isinstance(msg, dict):
            raise self._bad("your program's process broke the call protocol")
        return msg

    def _bad(self, why):
        if self.taint is None:
            self.taint = why
        return _Tainted(why)

    def ask(self, req):
        if not self.up:
            raise self._bad(self.taint or "your program's process is gone")
        write_frame(self.wr, req)
        msg = self.recv()
        if "ended" in msg:
            self.up = False
            raise self._bad(f"your program's process {msg['ended']} during a call")
        if "np" in msg:
            raise self._bad(str(msg["np"])[:TRACE_CHARS])
        if "nv" in msg:  # a peek at something that is not plain data
            return _NOVALUE
        if "e" in msg:
            raise self._rebuild(msg)
        if "v" not in msg:
            raise self._bad("your program's process broke the call protocol")
        try:
            value = self.dec(msg["v"])
        except (_NotPlain, ValueError, TypeError, RecursionError) as e:
            why = f"your program sent back something that is not plain data ({e})"
            raise self._bad(why) from None
        if type(msg.get("a")) is dict:
            self._update_args(req, msg["a"])
        return value

    def dec(self, v):
        return _dec(v, (lambda i: _Remote(self, i)) if self.live else None)

    def _rebuild(self, msg):
        name = msg.get("e")
        cls = getattr(builtins, name, None) if type(name) is str else None
        if name in ("StopIteration", "StopAsyncIteration"):  # would end map()/loops early
            return self._bad(f"your code raised {name} out of a call")
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            return self._bad(f"your program exited during a call ({str(msg.get('m'))[:200]})")
        e = cls(str(msg.get("m")))
        e.agentgym_trace = str(msg.get("tb") or "")[-TRACE_CHARS:]
        return e

    def _update_args(self, req, changed):
        args = self._sent_args
        for k, v in changed.items():
            try:
                a = args[int(k)]
                new = self.dec(v)
            except (ValueError, IndexError, TypeError, _NotPlain, RecursionError):
                continue
            if type(a) is type(new) is list:
                a[:] = new
            elif type(a) is type(new) and type(a) in (dict, set):
                a.clear()
                a.update(new)


def _enc_arg(x, depth=0):
    """G side: an argument for the submission (plain data or one of its handles)."""
    if type(x) is _Remote:
        return {"h": x._h}
    t = type(x)
    if x is None or t in (bool, int, float, str):
        return x if t is not int or x.bit_length() < BIG_INT_BITS else {"i": format(x, "x")}
    if depth > MAX_DEPTH:
        raise TypeError("argument nested too deeply for the sandbox")
    d = depth + 1
    if t is list:
        return [_enc_arg(v, d) for v in x]
    if t is tuple:
        return {"t": [_enc_arg(v, d) for v in x]}
    if t is dict:
        return {"d": [[_enc_arg(k, d), _enc_arg(v, d)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "z": [_enc_arg(v, d) for v in x]}
    if t is bytes:
        return {"b": binascii.b2a_base64(x, newline=False).decode()}
    if t is complex:
        return {"c": [x.real, x.imag]}
    raise TypeError(
        f"the test passed a {t.__name__} to the submission; only plain data and objects "
        "the submission returned can cross into its process"
    )


_NOVALUE = object()


class _Remote:
    """A name of the submission, or (for tasks with live objects) one of its objects.

    A name whose value is plain data (a constant, a list) is fetched on its first
    use other than a call and bound as that value in the test's scope; functions,
    classes and live objects stay in the submission's process and are used there.
    """

    __slots__ = ("_link", "_h", "_scope", "_v")

    def __init__(self, link, h, scope=None):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_h", h)
        object.__setattr__(self, "_scope", scope)  # the test's globals, for a name
        object.__setattr__(self, "_v", _NOVALUE)

    def _do(self, op, *args, **kw):
        link = self._link
        req = {"op": op, "h": self._h, "a": [_enc_arg(a) for a in args]}
        if op == "call":
            req["k"] = {"d": [[k, _enc_arg(v)] for k, v in kw.items()]}
        link._sent_args = args
        return link.ask(req)

    def _peek(self):
        """The value of a name of the submission when it is plain data, else _NOVALUE."""
        if self._scope is not None:
            v = self._do("peek")
            if v is not _NOVALUE and self._scope.get(self._h) is self:
                self._scope[self._h] = v
            object.__setattr__(self, "_v", v)
            object.__setattr__(self, "_scope", None)
        return self._v

    def _local_or(self, local, op, *args):
        v = self._peek()
        return local(v) if v is not _NOVALUE else self._do(op, *args)

    def __call__(self, *args, **kw):
        return self._do("call", *args, **kw)

    def __getattr__(self, name):
        return self._local_or(lambda v: getattr(v, name), "getattr", name)

    def __len__(self):
        return self._local_or(len, "len")

    def __iter__(self):
        return iter(self._local_or(lambda v: v, "iter"))

    def __contains__(self, k):
        return self._local_or(lambda v: k in v, "contains", k)

    def __getitem__(self, k):
        return self._local_or(lambda v: v[k], "getitem", k)

    def __setitem__(self, k, x):
        self._local_or(lambda v: v.__setitem__(k, x), "setitem", k, x)

    def __delitem__(self, k):
        self._local_or(lambda v: v.__delitem__(k), "delitem", k)

    def __str__(self):
        return self._local_or(str, "str")

    def __repr__(self):
        v = self._v
        return repr(v) if v is not _NOVALUE else f"<object of the submission: {self._h}>"

    def _value(self):
        """The object as plain data, for what only a value can do (compare, add...).

        A function, a class or a live object is not plain data: the test fails.
        """
        v = self._peek()
        return v if v is not _NOVALUE else self._do("value")


# What only a value can do (compare, do arithmetic, test truth) is done in G on the
# object fetched as plain data; a function, class or live object fails the test there.
for _name, _fn in {
    "__eq__": lambda s, o: s._value() == o,
    "__ne__": lambda s, o: s._value() != o,
    "__lt__": lambda s, o: s._value() < o,
    "__le__": lambda s, o: s._value() <= o,
    "__gt__": lambda s, o: s._value() > o,
    "__ge__": lambda s, o: s._value() >= o,
    "__add__": lambda s, o: s._value() + o,
    "__radd__": lambda s, o: o + s._value(),
    "__sub__": lambda s, o: s._value() - o,
    "__rsub__": lambda s, o: o - s._value(),
    "__mul__": lambda s, o: s._value() * o,
    "__rmul__": lambda s, o: o * s._value(),
    "__truediv__": lambda s, o: s._value() / o,
    "__mod__": lambda s, o: s._value() % o,
    "__neg__": lambda s: -s._value(),
    "__abs__": lambda s: abs(s._value()),
    "__bool__": lambda s: bool(s._value()),
    "__hash__": lambda s: hash(s._value()),
    "__int__": lambda s: int(s._value()),
    "__float__": lambda s: float(s._value()),
    "__index__": lambda s: s._value().__index__(),
}.items():
    setattr(_Remote, _name, _fn)


def _grader(req, state, fds):
    """Body of G: read the tests, grade each through the link, report; never returns."""
    cmd_w, rep_r, verdict_w, tests_r = fds
    chunks = []
    while True:
        c = os.read(tests_r, 1 << 20)
        if not c:
            break
        chunks.append(c)
    os.close(tests_r)
    tests = _loads(b"".join(chunks).decode("utf-8"))
    link = _Link(cmd_w, rep_r, bool(req.get("live")))
    try:
        loaded = link.recv()
        failure = None if loaded.get("loaded") is True else str(loaded.get("error"))[-TRACE_CHARS:]
        if loaded.get("oom") is True:
            os.write(verdict_w, b'{"oom": true}\n')
    except _Tainted:
        failure = "your program's process ended before the tests could run"
    for name, src, names in tests:
        if failure is not None:
            msg = {"name": name, "passed": False, "error": "solution failed:\n" + failure}
        else:
            msg = _grade_one(link, name, src, names)
            if link.broken:
                failure = "your program's process broke the call protocol"
        os.write(verdict_w, (_dumps({"test": msg}) + "\n").encode())
    try:
        if link.ending and not link.broken:  # let C reap the last test's fork first
            for _ in range(64):
                if "ended" in link.recv():
                    break
        write_frame(cmd_w, {"op": "quit"})
    except (OSError, _Tainted):
        pass
    os._exit(0)


def _grade_one(link, name, src, names):
    """Run one test snippet in G against remote handles; returns its verdict."""
    link.taint = None
    error = None
    try:
        link.begin()
        scope = {"__name__": "__agentgym_test__", "__builtins__": builtins}
        for k in names:  # the submission's names: remote, resolved when used
            scope[k] = _Remote(link, k, scope)
        _register_source(f"<test:{name}>", src)
        exec(compile(src, f"<test:{name}>", "exec"), scope)
    except _Tainted:
        pass
    except OSError as e:
        if link.taint is None:
            link.taint = f"your program's process is gone ({e})"
        link.up = False
    except SystemExit as e:
        error = f"test exited early (SystemExit {e.code!r})"
    except BaseException as e:
        error = getattr(e, "agentgym_trace", None) or _format_exc(e)
        if getattr(e, "agentgym_trace", None):
            error = f"{error.rstrip()}\n(raised by your code, called from the test)"
    _finish_test(link)
    if link.taint is not None:
        error = link.taint
    return {"name": name, "passed": error is None, "error": error}


def _finish_test(link):
    """Tell the test's fork to end; C's word that it has is read before the next test."""
    if not link.up:
        return
    link.up = False
    try:
        write_frame(link.wr, {"op": "end"})
        link.ending = True
    except OSError:
        link.broken = True


# -- the agent's side of a graded run -----------------------------------------------


def _grader_uid(state):
    """G's uid: a neighbour of the task uid when we can switch, else our own."""
    return state["uid"] + 1 if state["uid"] > 0 and os.geteuid() == 0 else -1


def _place(pairs, keep_from):
    """dup2 each (fd, target) without clobbering a source; close every other fd."""
    high = [(fcntl.fcntl(fd, fcntl.F_DUPFD, 256), target) for fd, target in pairs]
    for fd, target in high:
        os.dup2(fd, target)
    wanted = {t for _, t in pairs}
    for fd in range(keep_from):
        if fd not in wanted:
            try:
                os.close(fd)
            except OSError:
                pass
    os.closerange(keep_from, 1 << 16)


def _fork_grader(req, state, fds):
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        _place([(null, 0), (null, 1), (null, 2)] + [(fd, 3 + i) for i, fd in enumerate(fds)], 7)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _enter_jail(state, req["limits"], state["env"], uid=_grader_uid(state), cwd="/")
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no /proc/<G>/fd or mem for anyone
        sys.path[:] = [p for p in sys.path if p and not p.startswith(state["workspace"])]
        _grader(req, state, (3, 4, 5, 6))
    except BaseException as e:
        _bail(f"grader set-up failed: {e!r}")
    os._exit(125)


def _fork_candidate(req, state, fds):
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        os.setsid()
        # stdin, stdout, stderr, then the call pipes on 4 and 5 (3 stays closed)
        _place(list(zip(fds, (0, 1, 2, 4, 5), strict=True)), 6)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _enter_jail(state, req["limits"], state["env"])
        _candidate(req, state, 4, 5)
    except BaseException as e:
        _bail(f"task set-up failed: {e!r}")
    os._exit(125)


def _forward_frame(src, dst):
    """Copy one frame from ``src`` to ``dst`` through one buffer, zeroed afterwards.

    This is how the tests reach G: read after C was forked and never kept in the
    agent, so no later fork of the agent finds them in its memory either.
    """
    head = _read_exact(src, 4)
    if head is None:
        raise EOFError("no tests frame")
    (n,) = struct.unpack(">I", head)
    buf = bytearray(n)
    view = memoryview(buf)
    try:
        got = 0
        while got < n:
            k = os.readv(src, [view[got:]])
            if k == 0:
                raise EOFError("truncated tests frame")
            got += k
        try:
            sent = 0
            while sent < n:
                sent += os.write(dst, view[sent:])
        except OSError:
            pass
    finally:
        view[:] = bytes(n)
        view.release()


def run_grading(req, state):
    """Fork G and C, hand the tests to G, supervise; returns the response dict."""
    limits = req["limits"]
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    cmd_r, cmd_w = os.pipe()
    rep_r, rep_w = os.pipe()
    vrd_r, vrd_w = os.pipe()
    tst_r, tst_w = os.pipe()
    oom_before = _oom_kills()
    t0 = time.monotonic()
    grader = _fork_grader(req, state, (cmd_w, rep_r, vrd_w, tst_r))
    cand = _fork_candidate(req, state, (in_r, out_w, err_w, cmd_r, rep_w))
    for fd in (in_r, in_w, out_w, err_w, cmd_r, cmd_w, rep_r, rep_w, vrd_w, tst_r):
        os.close(fd)
    try:
        _forward_frame(state["proto_in"], tst_w)
    finally:
        os.close(tst_w)
    cap = int(limits["output_bytes"])
    sinks = (_Sink(cap), _Sink(cap))
    verdicts = _Sink(1 << 24)
    deadline = t0 + float(limits["wall_time_s"])
    fds = (out_r, err_r, vrd_r)
    g_status, timed_out, still_open = _pump(fds, grader, deadline, sinks, verdicts)
    duration = time.monotonic() - t0
    if g_status is None:
        os.kill(grader, signal.SIGKILL)
        os.waitpid(grader, 0)
    c_status, quiet = _wait_briefly(cand, 0.2)
    quiet = quiet and g_status is not None and not timed_out
    _kill_leftovers(state, cand, wipe=bool(req.get("reset")), quiet=quiet)
    for fd in list(still_open):
        while select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            still_open[fd].add(chunk)
    for fd in (out_r, err_r, vrd_r):
        os.close(fd)
    return _response(c_status, timed_out, duration, sinks, verdicts, oom_before)


def _wait_briefly(pid, seconds):
    """``(exit status, ended by itself)``: waits ``seconds`` for ``pid``, then kills it."""
    end = time.monotonic() + seconds
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            return st, True
        if time.monotonic() > end:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], False
        time.sleep(0.001)


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
        data = _dumps(out).encode()
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
        return _loads(b"".join(chunks).decode())
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
            f.write(binascii.a2b_base64(data.encode("ascii")))
        return None

    return fn


def _get(path):
    def fn():
        fd = os.open(_safe_rel(path), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return binascii.b2a_base64(f.read(), newline=False).decode()

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
                    __import__("shutil").rmtree(p, onerror=onerror)
                else:
                    os.unlink(p)
        return None

    return fn


def handle(req, state):
    """Serve one request."""
    op = req.get("op")
    if op != "exec" or req.get("kind") not in ("python", "shell"):
        _drop_spare(state)
    if op == "exec":
        return run_grading(req, state) if req.get("kind") == "grade" else run_task(req, state)
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
        elif a == "--path":  # started with -S: installed packages, without .pth hooks
            p = next(it)
            if p not in sys.path:
                sys.path.append(p)
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
    if serve:
        for name in PRELOAD:
            __import__(name)
    proto_in, proto_out = os.dup(0), os.dup(1)
    state["proto_in"] = proto_in
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    os.environ.clear()
    os.environ.update(state["env"])
    try:
        state["subreaper"] = _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:  # if whoever started us dies, clean up and go
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # code running as our uid (no uid switch) cannot open our fds or memory
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        _serve(state, serve, proto_in, proto_out)
    finally:
        _drop_spare(state)
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
        if req.get("op") == "exec" and req.get("kind") in ("python", "shell"):
            _spare_fork(state)  # the host is busy with the answer meanwhile


if __name__ == "__main__":
    main()
