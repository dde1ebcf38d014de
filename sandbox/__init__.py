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

from typing import Any

from agentgym.errors import ConfigError, SandboxUnavailable
from agentgym.sandbox.base import AgentSandbox
from agentgym.sandbox.pool import SandboxPool
from agentgym.sandbox.types import ExecResult, Limits, Sandbox, TestOutcome, TestReport

__all__ = [
    # entry points
    "get_sandbox",
    "available_backends",
    "backend_status",
    "SandboxPool",
    # types
    "Sandbox",
    "Limits",
    "ExecResult",
    "TestOutcome",
    "TestReport",
]

BACKENDS = ("bwrap", "docker", "local")
AUTO_ORDER = ("bwrap", "docker", "local")


def backend_status() -> dict[str, str | None]:
    """Each backend's name mapped to why it cannot work here (None when it can)."""
    from agentgym.sandbox.bwrap import bwrap_unavailable_reason
    from agentgym.sandbox.docker import docker_unavailable_reason

    return {
        "bwrap": bwrap_unavailable_reason(),
        "docker": docker_unavailable_reason(),
        "local": None,
    }


def available_backends() -> list[str]:
    """Names of the backends that work on this machine, in ``auto`` preference order."""
    status = backend_status()
    return [b for b in AUTO_ORDER if status[b] is None]


def resolve_backend(backend: str) -> str:
    """Turn ``"auto"`` into a concrete backend name; validate the others."""
    if backend == "auto":
        from agentgym.sandbox.bwrap import bwrap_unavailable_reason
        from agentgym.sandbox.docker import docker_unavailable_reason

        if bwrap_unavailable_reason() is None:
            return "bwrap"
        if docker_unavailable_reason() is None:
            return "docker"
        return "local"
    if backend not in BACKENDS:
        raise ConfigError(
            f"unknown sandbox backend {backend!r}; choose one of {('auto',) + BACKENDS}"
        )
    return backend


def make_backend(name: str, limits: Limits, *, persistent: bool = False) -> AgentSandbox:
    """Instantiate one backend (no ``auto``)."""
    if name == "bwrap":
        from agentgym.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox(limits, persistent=persistent)
    if name == "docker":
        from agentgym.sandbox.docker import DockerSandbox

        return DockerSandbox(limits)
    if name == "local":
        from agentgym.sandbox.local import LocalSandbox

        return LocalSandbox(limits, persistent=persistent)
    raise ConfigError(f"unknown sandbox backend {name!r}; choose one of {BACKENDS}")


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
