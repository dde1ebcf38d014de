"""Register, look up and make environments, over Gymnasium's own registry.

``agentgym.register`` writes to ``gymnasium.envs.registry``, so
``gymnasium.make("agentgym/Wordle-v0")`` and Gymnasium's wrappers work too.
Third-party packages expose environments through the ``agentgym.envs``
entry-point group: each entry point names a callable (called with no
arguments, it registers its envs) or a module (importing it registers them).
"""

from __future__ import annotations

import difflib
import importlib
import re
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, SupportsFloat

import gymnasium
from gymnasium.envs.registration import EnvSpec, WrapperSpec

from agentgym.errors import EnvNotFound, RegistrationError

__all__ = [
    "ENTRY_POINT_GROUP",
    "register",
    "make",
    "spec",
    "list_envs",
    "load_plugins",
    "TerminatedOverTruncated",
]

ENTRY_POINT_GROUP = "agentgym.envs"
#: ``make("remote:URL")`` reaches an env server (:mod:`agentgym.remote`).
REMOTE_PREFIX = "remote:"
_ID_RE = re.compile(r"^(?:[\w:.-]+/)?[\w:.-]+-v\d+$")
_plugins_loaded = False
_plugin_lock = threading.RLock()
_plugin_errors: dict[str, str] = {}


def register(
    id: str,
    entry_point: str | Callable[..., gymnasium.Env],
    *,
    max_turns: int | None = None,
    kwargs: dict[str, Any] | None = None,
    **spec_kwargs: Any,
) -> None:
    """Register an environment under ``namespace/Name-vN``.

    Args:
        id: the environment id, e.g. ``"myorg/Maze-v0"``.
        entry_point: ``"package.module:Class"`` or a callable returning the env.
        max_turns: turn limit; Gymnasium's TimeLimit sets ``truncated`` at it (never together
            with ``terminated``: see :class:`TerminatedOverTruncated`).
        kwargs: default constructor keyword arguments.
        **spec_kwargs: other :class:`gymnasium.envs.registration.EnvSpec` fields.

    Raises:
        RegistrationError: the id is malformed, or already registered with a
            different spec (registering the same spec twice is a no-op).

    Example:
        >>> import agentgym
        >>> agentgym.register("demo/Echo-v0", entry_point="my_pkg.echo:Echo", max_turns=3)
    """
    if not isinstance(id, str) or not _ID_RE.match(id):
        raise RegistrationError(
            f"environment id {id!r} is malformed; expected 'namespace/Name-vN', "
            "e.g. 'myorg/Maze-v0'"
        )
    if max_turns is not None and (not isinstance(max_turns, int) or max_turns < 1):
        raise RegistrationError(f"max_turns must be a positive int, got {max_turns!r}")
    kwargs = dict(kwargs or {})
    existing = gymnasium.envs.registry.get(id)
    if existing is not None:
        same = (
            existing.entry_point == entry_point
            and existing.max_episode_steps == max_turns
            and existing.kwargs == kwargs
        )
        if same:
            return
        raise RegistrationError(
            f"{id!r} is already registered with a different spec "
            f"(entry_point={existing.entry_point!r}, max_turns={existing.max_episode_steps}, "
            f"kwargs={existing.kwargs}); bump the version (e.g. -v1) to register a variant"
        )
    # disable_env_checker: the passive checker wraps every make(); we run
    # check_env in the tests instead, once per registered id.
    spec_kwargs.setdefault("disable_env_checker", True)
    # Gymnasium applies additional wrappers outside its TimeLimit: this one keeps a
    # turn that both ends the task and hits the limit from reporting both flags.
    spec_kwargs.setdefault("additional_wrappers", (_END_ONCE,))
    gymnasium.register(
        id=id,
        entry_point=entry_point,
        max_episode_steps=max_turns,
        kwargs=kwargs,
        **spec_kwargs,
    )


class TerminatedOverTruncated(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """On a step that terminates, report ``truncated=False``.

    Gymnasium's TimeLimit sets ``truncated`` on the last allowed step even when the
    env terminated on it; an episode ends for one reason, and the task's own end
    (solved, failed) is the one that counts. :func:`register` adds this wrapper to
    every agentgym spec, so ``gymnasium.make`` applies it too.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        """Wrap ``env``."""
        gymnasium.utils.RecordConstructorArgs.__init__(self)
        gymnasium.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; ``truncated`` only when it did not terminate."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated and not terminated, info


_END_ONCE = WrapperSpec(
    "TerminatedOverTruncated", "agentgym.registry:TerminatedOverTruncated", kwargs={}
)


def load_plugins(force: bool = False) -> dict[str, str]:
    """Load every ``agentgym.envs`` entry point once; return {name: error} for failures.

    A broken plugin does not stop the others; its error is kept and shown by
    ``agentgym list`` and in :class:`EnvNotFound` messages.
    """
    global _plugins_loaded
    with _plugin_lock:
        if _plugins_loaded and not force:
            return dict(_plugin_errors)
        _plugins_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj):
                    obj()
            except Exception as e:  # a broken plugin must not break every make()
                _plugin_errors[f"{ep.name} ({ep.value})"] = f"{type(e).__name__}: {e}"
        return dict(_plugin_errors)


def list_envs(namespace: str | None = "*") -> list[str]:
    """Sorted ids of registered agentgym envs (plugins included).

    Args:
        namespace: only ids in this namespace; ``"*"`` (default) means every env
            whose class is an :class:`agentgym.AgentEnv`; ``None`` lists all of
            Gymnasium's registry.
    """
    load_plugins()
    ids = []
    for env_id, s in gymnasium.envs.registry.items():
        if namespace is None:
            ids.append(env_id)
        elif namespace == "*":
            if _is_agent_env(s):
                ids.append(env_id)
        elif s.namespace == namespace:
            ids.append(env_id)
    return sorted(ids)


def _is_agent_env(s: EnvSpec) -> bool:
    from agentgym.core import AgentEnv

    ep = s.entry_point
    if isinstance(ep, str):
        if s.namespace == "agentgym":
            return True
        mod, _, attr = ep.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except Exception:
            return False
        return isinstance(obj, type) and issubclass(obj, AgentEnv)
    return isinstance(ep, type) and issubclass(ep, AgentEnv)


def spec(id: str) -> EnvSpec:
    """The :class:`EnvSpec` of a registered id; unknown ids suggest close matches."""
    load_plugins()
    s = gymnasium.envs.registry.get(id)
    if s is None:
        raise EnvNotFound(_not_found_message(id))
    return s


def make(id: str, **kwargs: Any) -> gymnasium.Env:
    """Create a registered environment, like :func:`gymnasium.make`.

    ``max_turns=N`` overrides the registered turn limit; other keyword
    arguments go to the env's constructor. ``"remote:http://HOST:PORT/ENV_ID"``
    makes an :class:`agentgym.remote.RemoteEnv` on an env server instead.

    Example:
        >>> env = agentgym.make("agentgym/Wordle-v0")
        >>> obs, info = env.reset(seed=0)
    """
    if id.startswith(REMOTE_PREFIX):
        from agentgym.remote.client import make_remote

        return make_remote(id[len(REMOTE_PREFIX) :], **kwargs)
    s = spec(id)
    max_turns = kwargs.pop("max_turns", None)
    if max_turns is not None:
        kwargs["max_episode_steps"] = max_turns
    return gymnasium.make(s, **kwargs)


def _not_found_message(id: str) -> str:
    known = list_envs(None)
    close = difflib.get_close_matches(id, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    msg = f"no environment registered as {id!r}.{hint} Run `agentgym list` to see them all."
    if _plugin_errors:
        msg += " Some plugins failed to load: " + "; ".join(
            f"{k}: {v}" for k, v in _plugin_errors.items()
        )
    return msg
