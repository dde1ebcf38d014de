"""Host-side plumbing: talking to the in-sandbox agent, host workspaces, uids."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import py_compile
import secrets
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from agentgym.errors import SandboxError, SandboxTimeout

log = logging.getLogger("agentgym.sandbox")

AGENT_PATH = Path(__file__).with_name("_agent.py")
WORKSPACE_PREFIX = "agentgym-sbx-"
MNT_DETACH = 2


def encode_frame(obj: Any) -> bytes:
    """Length-prefixed JSON, the agent's wire format."""
    body = json.dumps(obj).encode("utf-8")
    return struct.pack(">I", len(body)) + body


AGENT_DIR_PREFIX = "agentgym-agent-"


@lru_cache(maxsize=1)
def agent_program() -> Path:
    """The agent compiled for this interpreter (a ``.pyc``), or its source if that fails.

    A script is compiled on every start and the agent is big: run as a ``.pyc`` a
    one-shot agent starts several times faster. The file lives in a private
    directory of this process, removed at exit.
    """
    for old in Path(tempfile.gettempdir()).glob(f"{AGENT_DIR_PREFIX}*"):
        pid = old.name[len(AGENT_DIR_PREFIX) :].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    d = tempfile.mkdtemp(prefix=f"{AGENT_DIR_PREFIX}{os.getpid()}-")
    out = Path(d) / "agent.pyc"
    try:
        py_compile.compile(
            str(AGENT_PATH),
            cfile=str(out),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except (OSError, py_compile.PyCompileError) as e:
        log.warning("could not compile the sandbox agent (%s); running its source", e)
        shutil.rmtree(d, ignore_errors=True)
        return AGENT_PATH
    atexit.register(shutil.rmtree, d, True)
    return out


def site_path_args() -> list[str]:
    """``--path DIR`` for each site-packages dir of this interpreter (agents start with -S).

    Without ``site`` the agent starts in a fraction of the time (no ``.pth`` hooks
    run); code in the sandbox still imports the packages installed here.
    """
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    out: list[str] = []
    for d in dirs:
        if os.path.isdir(d):
            out += ["--path", d]
    return out


def alloc_uid() -> int:
    """A fresh unprivileged uid for one sandbox when running as root, else -1.

    Each sandbox gets its own uid so that RLIMIT_NPROC (counted per uid) of one
    sandbox cannot starve another, and "kill every process of this uid" only
    reaches its own processes. The range has no /etc/passwd entries on purpose.
    """
    if os.geteuid() != 0:
        return -1
    return 3_000_000 + secrets.randbelow(1_000_000_000)


class Channel(Protocol):
    """A live connection to one agent."""

    def request(self, req: dict[str, Any], timeout: float, tail: bytes = b"") -> dict[str, Any]:
        """Send one request (then ``tail``, raw frames) and wait for its response."""
        ...

    def alive(self) -> bool:
        """Whether the agent is still running."""
        ...

    def close(self) -> None:
        """Stop the agent (killing it if needed)."""
        ...


class PipeChannel:
    """An agent started as a host subprocess (local and bwrap backends)."""

    def __init__(self, argv: Sequence[str], what: str) -> None:
        self.what = what
        self._err = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._err,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            self._err.close()
            raise SandboxError(f"could not start the {what} sandbox agent: {e}") from e

    def alive(self) -> bool:
        """Whether the agent process is still running."""
        return self.proc.poll() is None

    def request(self, req: dict[str, Any], timeout: float, tail: bytes = b"") -> dict[str, Any]:
        """Send ``req`` and read the response, raising SandboxError if the agent dies."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(encode_frame(req) + tail)
            self.proc.stdin.flush()
        except OSError as e:
            raise self._died("while sending a request") from e
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        head = self._read(fd, 4, deadline)
        (n,) = struct.unpack(">I", head)
        body = self._read(fd, n, deadline)
        return json.loads(body.decode("utf-8"))

    def _read(self, fd: int, n: int, deadline: float) -> bytes:
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise SandboxTimeout(
                    f"the {self.what} sandbox agent did not answer in time; it was killed. "
                    "This is an infrastructure failure, not the code's."
                )
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise self._died("while waiting for a response")
            buf += chunk
        return buf

    def _died(self, when: str) -> SandboxError:
        self.close(keep_log=True)
        self._err.seek(0)
        err = self._err.read()[-2000:].decode("utf-8", "replace").strip()
        self._err.close()
        return SandboxError(
            f"the {self.what} sandbox agent exited {when} (exit status {self.proc.returncode}); "
            f"its stderr: {err or '(empty)'}"
        )

    def close(self, keep_log: bool = False) -> None:
        """Kill the agent's whole session and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin:
                self.proc.stdin.close()
        _wait_exit(self.proc, 5.0)
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdout:
                self.proc.stdout.close()
        if not keep_log:
            self._err.close()


def _wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    """Reap ``proc`` once it exits, waiting at most ``timeout`` (no polling sleeps)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout if fd < 0 else 0.5)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


class HostWorkspace:
    """A private host directory holding a sandbox's ``ws/`` and ``tmp/``.

    As root it is a tmpfs of ``disk_mb`` MiB, so filling the disk stops at that
    size; otherwise a plain directory (only per-file limits apply).
    """

    def __init__(self, uid: int, disk_mb: int) -> None:
        cleanup_stale_workspaces()
        self.root = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-"))
        self.mounted = False
        if os.geteuid() == 0:
            opts = f"size={int(disk_mb)}m,mode=0711,nr_inodes=65536".encode()
            rc = _libc().mount(b"tmpfs", str(self.root).encode(), b"tmpfs", 0, opts)
            if rc == 0:
                self.mounted = True
            else:
                log.warning("could not mount a tmpfs workspace (errno %d)", ctypes.get_errno())
        os.chmod(self.root, 0o711)
        self.ws = self.root / "ws"
        self.tmp = self.root / "tmp"
        for d in (self.ws, self.tmp):
            d.mkdir(mode=0o700)
            if uid > 0:
                os.chown(d, uid, uid)

    def close(self) -> None:
        """Unmount and delete the workspace."""
        _remove_workspace(self.root, self.mounted)


def _remove_workspace(root: Path, mounted: bool) -> None:
    if mounted:
        _libc().umount2(str(root).encode(), MNT_DETACH)
    shutil.rmtree(root, ignore_errors=True)


def _mounted_paths() -> set[str]:
    try:
        with open("/proc/self/mountinfo") as f:
            return {line.split()[4] for line in f}
    except OSError:
        return set()


def cleanup_stale_workspaces() -> int:
    """Remove workspaces left by agentgym processes that died; returns how many."""
    base = Path(tempfile.gettempdir())
    mounts = _mounted_paths()
    removed = 0
    for p in base.glob(f"{WORKSPACE_PREFIX}*"):
        try:
            pid = int(p.name[len(WORKSPACE_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue
        _remove_workspace(p, str(p) in mounts)
        removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
