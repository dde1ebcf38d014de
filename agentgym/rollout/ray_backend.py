"""Env workers as Ray actors: ``CollectConfig(env_backend="ray")``, ``--backend ray``.

Each actor holds the envs of the episodes pinned to it (an
:class:`~agentgym.rollout.workers.EnvHost`) and runs their operations one at a time;
the collector's timeouts apply as with processes: a stuck actor is killed
(``ray.kill``) and replaced, and the other episodes it held end as ``infra_error``
and are retried. Env factories and specs travel to the actors with Ray's
serialisation, so the env's package must be importable on every node.

Which cluster: ``CollectConfig.ray_address`` (``"auto"`` joins the cluster this machine
is part of, ``"ray://HOST:10001"`` a remote one through Ray Client); None joins a
running local cluster or starts one. ``ray`` is an optional dependency:
``pip install 'agentgym[ray]'``.
"""

from __future__ import annotations

from typing import Any

from agentgym.errors import InfraError, require
from agentgym.rollout.workers import EnvHost, FifoWorker, Post

__all__ = ["RayEnvWorker", "init_ray"]


def init_ray(address: str | None = None) -> Any:
    """Import ray and connect to (or start) a cluster unless connected already."""
    ray = require("ray", "ray", "env workers as Ray actors")
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": address} if address else {}
        ray.init(log_to_driver=False, **kwargs)
    return ray


_ACTOR: Any = None


def _actor_class(ray: Any) -> Any:
    global _ACTOR
    if _ACTOR is None:

        class EnvActor(EnvHost):
            def ping(self) -> bool:
                return True

        _ACTOR = ray.remote(EnvActor)
    return _ACTOR


class RayEnvWorker(FifoWorker):
    """One env worker actor (see the module docstring).

    Args:
        post: the collector's result callback.
        address: the Ray cluster (see :func:`init_ray`).
        num_cpus: CPUs the actor reserves on its node.
    """

    def __init__(self, post: Post, address: str | None = None, num_cpus: float = 1.0) -> None:
        super().__init__(post)
        self._ray = ray = init_ray(address)
        self._actor = _actor_class(ray).options(num_cpus=num_cpus).remote()
        ready = self._actor.ping.remote().future()
        ready.add_done_callback(lambda f: self._started() if f.exception() is None else None)

    def call(self, ticket: int, op: str, key: Any, args: tuple[Any, ...]) -> None:
        """Send one operation to the actor; its result is posted when it comes back."""
        self._sent(ticket)
        try:
            ref = self._actor.run.remote(op, key, args)
        except Exception as e:  # e.g. arguments Ray cannot serialise
            self._answered(ticket, None, InfraError(f"could not send to the env actor: {e}"))
            return
        ref.future().add_done_callback(lambda f: self._done(ticket, f))

    def _done(self, ticket: int, future: Any) -> None:
        error = future.exception()
        if error is not None:  # the actor died or was killed
            self._answered(ticket, None, InfraError(f"the env actor failed: {error}"))
            return
        value, failure = future.result()
        self._answered(ticket, value, failure.exception() if failure else None)

    def kill(self) -> None:
        """Kill the actor; its pending operations come back as InfraError."""
        self._ray.kill(self._actor, no_restart=True)
        self._lost("the env actor was killed (it held a hung episode)")

    def stop(self) -> None:
        """Release the actor."""
        self._ray.kill(self._actor, no_restart=True)
