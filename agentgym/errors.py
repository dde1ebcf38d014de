"""The agentgym exception hierarchy.

Every error raised on purpose by agentgym derives from :class:`AgentGymError`,
so ``except agentgym.errors.AgentGymError`` catches all of them. Messages say
what was expected, what came instead, and what to do about it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentGymError",
    "ConfigError",
    "DependencyMissing",
    "EnvNotFound",
    "RegistrationError",
    "ActionParseError",
    "TemplateError",
    "TemplateNotPrefixStable",
    "PolicyError",
    "SandboxError",
    "SandboxUnavailable",
    "SandboxTimeout",
    "InfraError",
    "ToolError",
    "require",
]


class AgentGymError(Exception):
    """Base class of every error agentgym raises on purpose."""


class ConfigError(AgentGymError, ValueError):
    """A configuration value or keyword is missing, unknown or out of range."""


class DependencyMissing(AgentGymError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(
            f"The optional package {package!r} is not installed{what}. "
            f"Install it with: pip install 'agentgym[{extra}]'"
        )
        self.package = package
        self.extra = extra


class EnvNotFound(AgentGymError, KeyError):
    """No environment is registered under the requested id."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class RegistrationError(AgentGymError, ValueError):
    """An environment id is malformed or was registered twice with different specs."""


class ActionParseError(AgentGymError, ValueError):
    """An action string could not be parsed. Envs turn this into an observation."""


class TemplateError(AgentGymError, ValueError):
    """A chat template cannot be rendered the way the token ledger needs."""


class TemplateNotPrefixStable(TemplateError):
    """The chat template rewrites earlier turns, so the ledger cannot be extended."""


class PolicyError(AgentGymError, RuntimeError):
    """A policy backend failed to generate."""


class InfraError(AgentGymError, RuntimeError):
    """Infrastructure (sandbox, server, daemon) failed; not the agent's fault.

    The collector records trajectories that hit it with status ``infra_error``
    and keeps them out of group statistics instead of scoring them 0.
    """


class SandboxError(InfraError):
    """A sandbox operation failed for a reason other than the user's code (infrastructure)."""


class SandboxUnavailable(SandboxError):
    """A sandbox backend cannot work on this machine (tool missing, daemon down)."""


class SandboxTimeout(SandboxError):
    """A sandbox control operation (not user code) exceeded its deadline."""


class ToolError(AgentGymError, RuntimeError):
    """A tool refuses a call (bad input, nothing found); the agent sees the message.

    Raise it inside a tool function to report an expected failure: the
    :class:`agentgym.tools.Toolbox` turns it into an ``Error: <message>`` tool
    message without the exception type.
    """


def require(module: str, extra: str, purpose: str = "") -> Any:
    """Import an optional dependency, or raise :class:`DependencyMissing` naming the extra.

    Example:
        >>> require("json", "core").dumps([1])
        '[1]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DependencyMissing(module.split(".")[0], extra, purpose) from e
