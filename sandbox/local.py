"""The ``local`` backend: a subprocess with rlimits. For development only."""

from __future__ import annotations

import os
import sys
import warnings

from agentgym.sandbox._host import AGENT_PATH, HostWorkspace, PipeChannel, alloc_uid
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
        self.workspace = HostWorkspace(self.uid, limits.disk_mb)

    def _start_agent(self, serve: bool) -> PipeChannel:
        argv = [sys.executable, "-I", str(AGENT_PATH), "--workspace", str(self.workspace.ws)]
        argv += ["--uid", str(self.uid), "--scratch", str(self.workspace.tmp)]
        if os.geteuid() == 0:
            argv.append("--netns")
        if serve:
            argv.append("--serve")
        return PipeChannel(argv, "local")

    def _release(self) -> None:
        self.workspace.close()


def local_unavailable_reason() -> str | None:
    """Always None: the local backend works wherever Python does."""
    return None
