r"""Code execution sandboxes (bwrap, docker, local) and a warm worker pool.

Example:
    >>> from agentgym.sandbox import get_sandbox
    >>> with get_sandbox("auto", wall_time_s=5) as sb:  # doctest: +SKIP
    ...     sb.run_python("print(2 + 2)").stdout
    '4\\n'

Backends are tried in the order bwrap, docker, local by ``"auto"``; a backend
that cannot work raises :class:`agentgym.errors.SandboxUnavailable` saying what
to install or start. Failures of the code itself (exceptions, timeouts, OOM)
come back as an :class:`ExecResult`, never as exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentgym.catalog import Registry
from agentgym.errors import SandboxUnavailable
from agentgym.sandbox.base import AgentSandbox
from agentgym.sandbox.pool import SandboxPool, shared_pool
from agentgym.sandbox.types import ExecResult, Limits, Sandbox, TestOutcome, TestReport

__all__ = [
    # entry points
    "get_sandbox",
    "available_backends",
    "backend_status",
    "BACKENDS",
    "Backend",
    "SandboxPool",
    "shared_pool",
    # types
    "Sandbox",
    "Limits",
    "ExecResult",
    "TestOutcome",
    "TestReport",
]

#: Sandbox backends by name: a factory ``(limits, *, persistent) -> AgentSandbox`` and a
#: probe ``() -> reason it cannot work here, or None``; ``auto`` tries them in order.
BACKENDS: Registry[Backend] = Registry("sandbox backend")


@dataclass(frozen=True)
class Backend:
    """One sandbox backend: how to build it and how to tell whether it works here."""

    factory: Callable[..., AgentSandbox]
    """``(limits, *, persistent) -> AgentSandbox``."""
    unavailable_reason: Callable[[], str | None]
    """Why it cannot work on this machine, or None when it can."""
    isolating: bool = True
    """Whether it isolates the code from the host (``local`` does not)."""


def _bwrap(limits: Limits, *, persistent: bool = False) -> AgentSandbox:
    from agentgym.sandbox.bwrap import BwrapSandbox

    return BwrapSandbox(limits, persistent=persistent)


def _bwrap_reason() -> str | None:
    from agentgym.sandbox.bwrap import bwrap_unavailable_reason

    return bwrap_unavailable_reason()


def _docker(limits: Limits, *, persistent: bool = False) -> AgentSandbox:
    from agentgym.sandbox.docker import DockerSandbox

    return DockerSandbox(limits)


def _docker_reason() -> str | None:
    from agentgym.sandbox.docker import docker_unavailable_reason

    return docker_unavailable_reason()


def _local(limits: Limits, *, persistent: bool = False) -> AgentSandbox:
    from agentgym.sandbox.local import LocalSandbox

    return LocalSandbox(limits, persistent=persistent)


# Registration order is the ``auto`` preference order: isolating backends first.
BACKENDS.register("bwrap", Backend(_bwrap, _bwrap_reason))
BACKENDS.register("docker", Backend(_docker, _docker_reason))
BACKENDS.register("local", Backend(_local, lambda: None, isolating=False))
AUTO_ORDER = ("bwrap", "docker", "local")


def backend_status() -> dict[str, str | None]:
    """Each backend's name mapped to why it cannot work here (None when it can)."""
    return {name: BACKENDS.get(name).unavailable_reason() for name in AUTO_ORDER}


def available_backends() -> list[str]:
    """Names of the backends that work on this machine, in ``auto`` preference order."""
    status = backend_status()
    return [b for b in AUTO_ORDER if status[b] is None]


def resolve_backend(backend: str) -> str:
    """Turn ``"auto"`` into a concrete backend name (the first that works); validate others.

    Raises:
        ConfigError: unknown backend name (with a "did you mean").
    """
    if backend == "auto":
        for name in AUTO_ORDER:
            if BACKENDS.get(name).unavailable_reason() is None:
                return name
        return "local"
    BACKENDS.get(backend)
    return backend


def make_backend(name: str, limits: Limits, *, persistent: bool = False) -> AgentSandbox:
    """Instantiate one backend (no ``auto``)."""
    return BACKENDS.get(name).factory(limits, persistent=persistent)


def get_sandbox(backend: str = "auto", **limits: Any) -> AgentSandbox:
    """Create a sandbox.

    Args:
        backend: ``"auto"`` (bwrap, then docker, then local with a warning),
            ``"bwrap"``, ``"docker"`` or ``"local"``.
        **limits: :class:`Limits` fields, e.g. ``wall_time_s=10, memory_mb=512``.

    Returns:
        A sandbox implementing :class:`Sandbox`; use it as a context manager or
        call ``close()``.

    Raises:
        SandboxUnavailable: The requested backend cannot work here; the message
            says what to install or start.
        ConfigError: Unknown backend or limit name.
    """
    lim = Limits.from_kwargs(**limits)
    return make_backend(resolve_backend(backend), lim)


__all__ += ["SandboxUnavailable"]
