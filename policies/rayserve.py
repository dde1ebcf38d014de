"""Policy servers as Ray actors, reached over the OpenAI-compatible API.

:class:`RayPolicy` starts ``replicas`` actors; each builds a policy from a spec
(``make_policy``: ``vllm:PATH`` for a vLLM engine on a GPU node, ``hf:PATH``, ...)
and serves it with :class:`~agentgym.policies.server.PolicyServer`, which batches the
requests that arrive together. The driver is an
:class:`~agentgym.policies.openai.OpenAIPolicy` over the actors' URLs, so episodes
stick to one replica (prefix cache), failures become ``infra_error``, and the
collector sends each request as soon as its episode is ready.

Weights: :meth:`RayPolicy.sync_weights` puts the trainer's state dict in Ray's
object store once and has every replica load it, waiting at most ``timeout_s``;
a replica that does not confirm in time raises :class:`~agentgym.errors.InfraError`.

On the command line: ``--policy ray:hf:PATH`` (one replica) or ``ray:vllm:PATH#4``
(four). ``ray`` is an optional dependency: ``pip install 'agentgym[ray]'``.
"""

from __future__ import annotations

import secrets
from typing import Any

from agentgym.errors import ConfigError, InfraError, require
from agentgym.policies.openai import OpenAIPolicy

__all__ = ["RayPolicy"]


class _Server:
    """The actor: a policy behind a PolicyServer on this node's address."""

    def __init__(self, spec: str, seed: int, batch_window_s: float, token: str) -> None:
        import ray

        from agentgym.policies.factory import make_policy
        from agentgym.policies.server import PolicyServer

        self.policy = make_policy(spec, seed=seed)
        host = ray.util.get_node_ip_address()
        self.server = PolicyServer(
            self.policy,
            model_name="agentgym",
            host=host,
            port=0,
            batch_window_s=batch_window_s,
            token=token,  # it binds the node's address: only this client may call it
        ).start()

    def info(self) -> dict[str, Any]:
        tok = self.policy.tokenizer
        return {"url": self.server.url, "tokenizer": getattr(tok, "name_or_path", None)}

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        if hasattr(self.policy, "load_weights"):  # vLLM: copy into the engine
            self.policy.load_weights(_StateDict(state))
        else:
            self.policy.model.load_state_dict(state)
        return True


class _StateDict:
    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


class RayPolicy(OpenAIPolicy):
    """``replicas`` policy servers as Ray actors (see the module docstring).

    Args:
        spec: what each actor serves, as for ``make_policy`` (``hf:PATH``, ``vllm:PATH``).
        replicas: how many actors.
        num_cpus: CPUs each actor reserves.
        num_gpus: GPUs each actor reserves (1 for a vLLM engine on a GPU).
        address: the Ray cluster (``"auto"``, ``"ray://HOST:10001"``); None joins or
            starts a local one.
        tokenizer: the served model's tokenizer (default: loaded from the path the
            actors report, which must exist on this machine too).
        start_timeout_s: how long the actors may take to load and start serving.
        seed: seed for the actors' policies.
        batch_window_s: how long each server waits to batch concurrent requests.
        **kwargs: passed on to :class:`OpenAIPolicy` (``timeout_s``, ``max_retries``, ...).
    """

    def __init__(
        self,
        spec: str,
        replicas: int = 1,
        *,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        address: str | None = None,
        tokenizer: Any = None,
        start_timeout_s: float = 600.0,
        seed: int = 0,
        batch_window_s: float = 0.005,
        **kwargs: Any,
    ) -> None:
        if replicas < 1:
            raise ConfigError(f"replicas must be >= 1, got {replicas}")
        ray = require("ray", "ray", "policy servers as Ray actors")
        if not ray.is_initialized():
            ray.init(log_to_driver=False, **({"address": address} if address else {}))
        actor = ray.remote(_Server).options(num_cpus=num_cpus, num_gpus=num_gpus)
        self._ray = ray
        token = secrets.token_urlsafe(32)
        self.actors = [
            actor.remote(spec, seed + i, batch_window_s, token) for i in range(replicas)
        ]
        try:
            infos = ray.get([a.info.remote() for a in self.actors], timeout=start_timeout_s)
        except Exception as e:
            self.close()
            raise InfraError(
                f"the {replicas} Ray policy server(s) for {spec!r} did not start within "
                f"{start_timeout_s:g} s: {e}"
            ) from e
        super().__init__(
            [i["url"] for i in infos],
            tokenizer=tokenizer or infos[0]["tokenizer"],
            model="agentgym",
            api_key=token,
            **kwargs,
        )

    def sync_weights(
        self, model: Any = None, path: str | None = None, *, timeout_s: float = 600.0
    ) -> None:
        """Load ``model``'s weights into every replica; raise unless all confirm in time.

        Raises:
            InfraError: a replica did not confirm within ``timeout_s`` (or died).
        """
        if model is None:
            raise ConfigError("RayPolicy.sync_weights needs the trained model")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        ref = self._ray.put(state)
        calls = [a.load_state_dict.remote(ref) for a in self.actors]
        try:
            self._ray.get(calls, timeout=timeout_s)
        except Exception as e:
            raise InfraError(
                f"weight sync failed: {len(self.actors)} Ray policy server(s) did not confirm "
                f"within {timeout_s:g} s ({type(e).__name__}: {e})"
            ) from e

    def close(self) -> None:
        """Kill the actors."""
        for a in self.actors:
            self._ray.kill(a, no_restart=True)
        self.actors = []
