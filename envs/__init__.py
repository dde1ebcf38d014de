"""Built-in environments.

Each family module defines ``register_envs()``, which registers its ids with
string entry points only, so importing it stays cheap (heavy packages such as
textworld load when an env is made, not here).
"""

from __future__ import annotations

import importlib

__all__ = ["FAMILIES", "register_builtin_envs"]

#: Modules of agentgym.envs that hold built-in env families.
FAMILIES = (
    "toytext",
    "wordle",
    "countdown",
    "lookup",
    "math_tools",
    "search_qa",
    "sql",
    "code",
    "textworld_env",
)


def register_builtin_envs() -> None:
    """Register every built-in env (idempotent; the entry-point hook calls it)."""
    for name in FAMILIES:
        try:
            module = importlib.import_module(f"agentgym.envs.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"agentgym.envs.{name}":
                continue  # family not present in this build
            raise
        module.register_envs()
