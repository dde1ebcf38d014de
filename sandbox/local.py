"""The ``local`` backend: a subprocess with rlimits. For development only."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import warnings
from functools import lru_cache

from agentgym.sandbox._host import (
    AGENT_PATH,
    HostWorkspace,
    PipeChannel,
    agent_program,
    alloc_uid,
    site_path_args,
)
from agentgym.sandbox.base import AgentSandbox
from agentgym.sandbox.types import Limits

NOT_ISOLATION = (
    "The 'local' sandbox backend is NOT isolation: code runs on this host with rlimits in "
    "its own process group{extra}. Use it for development only; install bubblewrap "
    "(apt-get install bubblewrap) or start Docker for real isolation."
)


class LocalSandbox(AgentSandbox):
    """Runs code in a host subprocess with rlimits and its own session.

    When the host process is root, runs also get a private network namespace and
    an unprivileged uid of their own; otherwise they run as you, with your files
    and your network. Each call starts a fresh agent (one interpreter start-up).
    """

    backend = "local"

    def __init__(self, limits: Limits, *, persistent: bool = False) -> None:
        super().__init__(limits, persistent=persistent)
        root = os.geteuid() == 0
        extra = ", a throw-away uid and no network (host is root)" if root else ""
        warnings.warn(NOT_ISOLATION.format(extra=extra), UserWarning, stacklevel=3)
        self.uid = alloc_uid()
        self.python = sys.executable if self.uid < 0 else world_usable_python()
        if self.python is None:
            warnings.warn(
                "no Python interpreter here is usable by an unprivileged uid; the local "
                "backend runs code as root, so process limits are not enforced.",
                UserWarning,
                stacklevel=3,
            )
            self.python, self.uid = sys.executable, -1
        self.workspace = HostWorkspace(self.uid, limits.disk_mb)

    def _start_agent(self, serve: bool) -> PipeChannel:
        mine = self.python == sys.executable  # else the .pyc may not fit that interpreter
        prog = agent_program() if mine else AGENT_PATH
        argv = [self.python, "-I", "-S", str(prog), "--workspace", str(self.workspace.ws)]
        if mine:
            argv += site_path_args()
        argv += ["--uid", str(self.uid), "--scratch", str(self.workspace.tmp)]
        if os.geteuid() == 0:
            argv.append("--netns")
        if serve:
            argv.append("--serve")
        return PipeChannel(argv, "local")

    def _release(self) -> None:
        self.workspace.close()


def _world_usable(path: str) -> bool:
    """Whether any user can reach and read ``path`` (every parent world-searchable)."""
    p = os.path.realpath(path)
    try:
        if not os.stat(p).st_mode & stat.S_IROTH:
            return False
        while p != "/":
            p = os.path.dirname(p)
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


@lru_cache(maxsize=1)
def world_usable_python() -> str | None:
    """An interpreter an unprivileged uid can run: this one if possible, else python3.

    When the host is root, local runs switch to a throw-away uid; an interpreter
    under root's home (pyenv) is then unreadable, so fall back to the system one.
    """
    candidates = [sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")]
    for exe in candidates:
        if not exe:
            continue
        if exe == sys.executable:
            stdlib = os.path.join(sys.base_prefix, "lib")
            if not (_world_usable(exe) and _world_usable(stdlib)):
                continue
        elif not _world_usable(exe):
            continue
        return exe
    return None


def local_unavailable_reason() -> str | None:
    """Always None: the local backend works wherever Python does."""
    return None
