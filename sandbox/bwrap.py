"""The ``bwrap`` backend: bubblewrap namespaces, read-only system, private workspace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from agentgym.errors import SandboxUnavailable
from agentgym.sandbox._host import (
    HostWorkspace,
    PipeChannel,
    agent_program,
    alloc_uid,
    site_path_args,
)
from agentgym.sandbox.base import AgentSandbox
from agentgym.sandbox.types import Limits

INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
    "bubblewrap) or pick another backend (docker, local)."
)
AGENT_DIR_IN_SANDBOX = "/opt/agentgym"
SYSTEM_DIRS = ("/usr", "/etc")
MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _python_dirs() -> list[str]:
    """Directories the interpreter needs: its prefix, base prefix and real path."""
    dirs = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    out: list[str] = []
    for d in sorted(dirs, key=len):
        d = os.path.realpath(d)
        if any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS):
            continue
        if not any(d == o or d.startswith(o + "/") for o in out):
            out.append(d)
    return out


# The sandbox gets its own /tmp; an interpreter living under it (a venv in /tmp) is
# bound again on top of that private /tmp, after it is mounted.
PRIVATE_DIRS = ("/tmp", "/var/tmp")


def _under(d: str, roots: tuple[str, ...]) -> bool:
    return any(d == r or d.startswith(r + "/") for r in roots)


def _bind_dirs_args(dirs: list[str], mounted: tuple[str, ...] = ()) -> list[str]:
    """Read-only binds of ``dirs`` with world-traversable, otherwise empty parents."""
    args: list[str] = []
    made: set[str] = set(mounted)
    for d in dirs:
        parts = Path(d).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", d, d]
    return args


def _ro_tree_args(python_dirs: list[str]) -> list[str]:
    """Bwrap arguments for a read-only system and interpreter, nothing else of the host."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in MERGED_USR:
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    return args + _bind_dirs_args([d for d in python_dirs if not _under(d, PRIVATE_DIRS)])


def agent_in_sandbox(agent: Path) -> str:
    """Where the agent file (source or ``.pyc``) appears inside the sandbox."""
    return f"{AGENT_DIR_IN_SANDBOX}/agent{agent.suffix}"


def bwrap_argv(workspace: HostWorkspace, network: bool = False) -> list[str]:
    """The full bubblewrap command line up to (not including) the program."""
    agent = agent_program()
    exe = shutil.which("bwrap")
    if exe is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed. {INSTALL_HINT}")
    args = [exe, "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        args.append("--unshare-net")
    args += ["--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"]
    python_dirs = _python_dirs()
    args += _ro_tree_args(python_dirs)
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--bind", str(workspace.ws), "/workspace", "--bind", str(workspace.tmp), "/tmp"]
    args += ["--symlink", "/tmp", "/var/tmp", "--ro-bind", str(agent), agent_in_sandbox(agent)]
    in_tmp = [d.replace("/var/tmp", "/tmp", 1) for d in python_dirs if _under(d, PRIVATE_DIRS)]
    args += _bind_dirs_args(in_tmp, mounted=("/tmp",))
    args += _hide_agentgym(python_dirs)
    if os.geteuid() == 0:  # the agent keeps just enough to drop to the task uid
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
            args += ["--cap-add", cap]
    else:
        args += ["--unshare-user"]
    return args


def _hide_agentgym(python_dirs: list[str]) -> list[str]:
    """An empty tmpfs over agentgym's own files where the sandbox would see them.

    A regular install puts agentgym (its shipped tasks and their tests) inside the
    interpreter's directories, which the sandbox sees read-only; graded code must
    not read the expected values there.
    """
    here = os.path.realpath(Path(__file__).resolve().parent.parent)
    if not any(_under(here, (d,)) for d in python_dirs):
        return []
    if _under(here, PRIVATE_DIRS):
        here = here.replace("/var/tmp", "/tmp", 1)
    return ["--tmpfs", here, "--remount-ro", here]


class BwrapSandbox(AgentSandbox):
    """Runs code under bubblewrap with a read-only system and a private workspace.

    New namespaces (no network), an unprivileged uid, killed with its parent.

    Each call starts a fresh bwrap and interpreter; :class:`SandboxPool` keeps
    warm ones instead.
    """

    backend = "bwrap"

    def __init__(self, limits: Limits, *, persistent: bool = False) -> None:
        reason = bwrap_unavailable_reason()
        if reason:
            raise SandboxUnavailable(reason)
        super().__init__(limits, persistent=persistent)
        self.uid = alloc_uid()
        self.workspace = HostWorkspace(self.uid, limits.disk_mb)
        self._argv = bwrap_argv(self.workspace, network=limits.network)

    def _start_agent(self, serve: bool) -> PipeChannel:
        prog = agent_in_sandbox(agent_program())
        argv = self._argv + ["--", sys.executable, "-I", "-S", prog, *site_path_args()]
        argv += ["--workspace", "/workspace", "--scratch", "/tmp", "--uid", str(self.uid)]
        if serve:
            argv.append("--serve")
        return PipeChannel(argv, "bwrap")

    def _release(self) -> None:
        self.workspace.close()


@lru_cache(maxsize=1)
def bwrap_unavailable_reason() -> str | None:
    """Why bwrap cannot run here, or None when a trial sandbox works."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bubblewrap (bwrap) is not installed. {INSTALL_HINT}"
    args = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--", "/bin/true"]
    if os.geteuid() == 0:
        args = [exe, "--unshare-pid", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/"]
        args += ["--", "/bin/true"]
    try:
        p = subprocess.run(args, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap is installed but could not run: {e}. {INSTALL_HINT}"
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip()
        return (
            f"bwrap is installed but cannot create namespaces here ({err}). Enable unprivileged "
            "user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as root."
        )
    return None
