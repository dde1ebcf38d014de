"""A Gymnasium env whose episodes run on an agentgym env server.

``agentgym.make("remote:http://HOST:PORT/agentgym/Wordle-v0")`` returns a
:class:`RemoteEnv`: it opens a session on the server (one env instance there) and
forwards ``reset``/``step``; ``close`` ends the session. It imports nothing heavy
(only the standard library), so a trainer can drive envs it cannot install.

Errors keep the collector's meaning (see :mod:`agentgym.errors`):

- the server is down, times out, refuses the token, is at its session cap, or has
  reaped the session mid-episode: :class:`RemoteError`, an
  :class:`~agentgym.errors.InfraError` (the collector marks ``infra_error``);
- the env itself raised on the server: :class:`RemoteEnvError` (``env_error``);
- the env id is unknown there: :class:`~agentgym.errors.EnvNotFound`; the env
  refused its keyword arguments: :class:`~agentgym.errors.ConfigError`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from agentgym.core import AgentEnv, Message
from agentgym.errors import AgentGymError, ConfigError, EnvNotFound, InfraError
from agentgym.remote.auth import resolve_token
from agentgym.remote.protocol import PREFIX, dumps

__all__ = ["RemoteEnv", "RemoteError", "RemoteEnvError", "make_remote", "split_url"]


class RemoteError(InfraError):
    """The env server could not be used (down, timeout, 401, full, session gone)."""


class RemoteEnvError(AgentGymError, RuntimeError):
    """The environment raised on the server; the message carries its error."""


def split_url(url: str) -> tuple[str, str]:
    """``"http://h:1/ns/Name-v0"`` -> ``("http://h:1", "ns/Name-v0")``.

    Raises:
        ConfigError: not an http(s) URL with an env id as its path.
    """
    parsed = urllib.parse.urlsplit(url)
    env_id = parsed.path.strip("/")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not env_id:
        raise ConfigError(
            f"remote env URL {url!r} is malformed; expected "
            "'http://HOST:PORT/NAMESPACE/Name-vN', e.g. 'http://127.0.0.1:8001/agentgym/Wordle-v0'"
        )
    return f"{parsed.scheme}://{parsed.netloc}", env_id


class RemoteEnv(AgentEnv):
    """An env served by :class:`agentgym.remote.EnvServer` (see the module docstring).

    Args:
        url: ``http://HOST:PORT/ENV_ID``.
        token: the server's bearer token (default: ``$AGENTGYM_TOKEN``).
        timeout_s: per-request timeout (a ``step`` that takes longer is an infra error).
        render_mode: as for any :class:`~agentgym.AgentEnv`.
        **env_kwargs: keyword arguments of the env on the server (JSON values),
            ``max_turns`` included.

    Raises:
        RemoteError: the server cannot be reached, refuses the token or is full.
        EnvNotFound: the server has no such env.
        ConfigError: a malformed URL, or kwargs the env refused.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 60.0,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        super().__init__(render_mode=render_mode)
        self.base_url, self.env_id = split_url(url)
        self.url = f"{self.base_url}/{self.env_id}"
        self.token = resolve_token(token)
        self.timeout_s = float(timeout_s)
        self.env_kwargs = dict(env_kwargs)
        self.session_id: str | None = None
        self.max_turns: int | None = None
        self.reward_components: dict[str, str] = {}
        self._open()

    # ---------------------------------------------------------------- gymnasium
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start an episode on the server; a session reaped while idle is reopened."""
        super().reset(seed=seed)
        body = {"seed": seed, "options": options}
        if self.session_id is None:
            self._open()
        try:
            out = self._session_call("reset", body)
        except _SessionGone:
            self._open()  # nothing is lost: a reset starts afresh anyway
            out = self._session_call("reset", body)
        return self.begin(list(out["observation"]), dict(out.get("info") or {}))

    def step(self, action: str) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Send one action; returns the server env's step."""
        if self.session_id is None:
            raise RemoteError(f"{self.url}: step() before reset() or after close()")
        try:
            out = self._session_call("step", {"action": action})
        except _SessionGone as e:
            raise RemoteError(
                f"{self.url}: the server no longer knows this session (restarted, or it reaped "
                "the session after being idle longer than its --idle-timeout-s); the episode "
                "is lost"
            ) from e
        obs = list(out["observation"])
        self._transcript.append({"role": "assistant", "content": action})
        self._transcript.extend(obs)
        self._maybe_render()
        return (
            obs,
            float(out["reward"]),
            bool(out["terminated"]),
            bool(out["truncated"]),
            dict(out.get("info") or {}),
        )

    def close(self) -> None:
        """End the session on the server (best effort: a dead server is not an error here)."""
        sid, self.session_id = self.session_id, None
        if sid is not None:
            try:
                quick = min(5.0, self.timeout_s)
                self._request("DELETE", f"/sessions/{sid}", None, timeout_s=quick)
            except AgentGymError:
                pass
        super().close()

    def __repr__(self) -> str:
        return f"RemoteEnv({self.url!r}, session={self.session_id!r})"

    # ---------------------------------------------------------------- transport
    def _open(self) -> None:
        out = self._request("POST", "/sessions", {"env_id": self.env_id, "kwargs": self.env_kwargs})
        self.session_id = str(out["session_id"])
        self.max_turns = out.get("max_turns")
        self.reward_components = dict(out.get("reward_components") or {})

    def _session_call(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", f"/sessions/{self.session_id}/{verb}", body)

    def _request(
        self, method: str, route: str, body: Any, timeout_s: float | None = None
    ) -> dict[str, Any]:
        data = None if body is None else dumps(body)
        req = urllib.request.Request(f"{self.base_url}{PREFIX}{route}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return dict(json.loads(resp.read() or b"{}"))
        except urllib.error.HTTPError as e:
            raise self._error(e.code, e.read()) from None
        except (TimeoutError, urllib.error.URLError, OSError) as e:  # refused, reset, timeout
            reason = getattr(e, "reason", e)
            raise RemoteError(
                f"env server {self.base_url} did not answer {method} {route} within {timeout:g}s: "
                f"{type(reason).__name__}: {reason}. Is `agentgym serve-env` running there?"
            ) from e
        except ValueError as e:  # not JSON: something else listens on that port
            raise RemoteError(f"{self.base_url} answered {method} {route} with non-JSON") from e

    def _error(self, status: int, raw: bytes) -> Exception:
        try:
            err = json.loads(raw)["error"]
            kind, message = str(err.get("type")), str(err.get("message"))
        except Exception:
            kind, message = "?", raw[:200].decode(errors="replace")
        where = f"env server {self.base_url} ({self.env_id})"
        if status == 401:
            return RemoteError(
                f"{where} refused the bearer token (401); pass token=... or set $AGENTGYM_TOKEN "
                "to the token the server was started with"
            )
        if status == 404 and kind == "SessionNotFound":
            return _SessionGone(message)
        if status == 404 and kind == "EnvNotFound":
            return EnvNotFound(f"{where}: {message}")
        if status == 400 and kind == "BadEnvKwargs":
            return ConfigError(f"{where} refused the env kwargs {self.env_kwargs}: {message}")
        if status == 500 and kind == "EnvError":
            return RemoteEnvError(f"{where}: the env raised: {message}")
        return RemoteError(f"{where}: HTTP {status} {kind}: {message}")


class _SessionGone(RemoteError):
    """The server does not know the session (reaped or restarted)."""


def make_remote(url: str, **kwargs: Any) -> RemoteEnv:
    """Build a :class:`RemoteEnv` (what ``agentgym.make("remote:URL", **kwargs)`` calls)."""
    return RemoteEnv(url, **kwargs)
