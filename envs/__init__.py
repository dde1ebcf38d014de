"""Built-in environments; ``register_builtin_envs`` registers them all."""

from __future__ import annotations

__all__ = ["register_builtin_envs"]


def register_builtin_envs() -> None:
    """Register every built-in env (idempotent; the entry-point hook calls it)."""
