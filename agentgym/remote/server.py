"""Serve registered environments over HTTP: one env per session (see :mod:`.protocol`).

``agentgym serve-env`` (or :class:`EnvServer` in code) lets envs run on another
machine or in a container, for agentgym's collector (``agentgym.make("remote:URL")``)
or any other trainer that speaks HTTP. Each session owns one env instance made with
:func:`agentgym.make`; at most ``max_sessions`` live at once, and a session left idle
for ``idle_timeout_s`` is closed by a reaper thread. The server binds 127.0.0.1 by
default and refuses any other interface without a bearer token
(:func:`agentgym.remote.auth.check_bind`).

Example:
    >>> from agentgym.remote import EnvServer
    >>> import agentgym
    >>> with EnvServer(port=0) as server:
    ...     env = agentgym.make(f"remote:{server.url}/agentgym/Wordle-v0")
    ...     obs, info = env.reset(seed=0)
    ...     env.close()
    >>> obs[0]["role"]
    'system'
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gymnasium

from agentgym.errors import ConfigError, EnvNotFound
from agentgym.registry import list_envs, make, spec
from agentgym.remote.auth import authorized, check_bind
from agentgym.remote.http import QuietJSONHandler, block_until_interrupted, start_threads
from agentgym.remote.protocol import MAX_BODY_BYTES, PREFIX, PROTOCOL_VERSION, dumps

__all__ = ["EnvServer"]


class _HTTPError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


@dataclass
class _Session:
    env: gymnasium.Env
    env_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)


class EnvServer:
    """An HTTP server of agentgym environments (protocol in :mod:`agentgym.remote.protocol`).

    Args:
        host: interface to bind; anything but loopback needs ``token``.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        token: bearer token every request must carry (optional on loopback).
        max_sessions: most sessions (env instances) alive at once; more get 503.
        idle_timeout_s: a session unused this long is closed and forgotten.
        env_ids: the env ids clients may make (default: every registered env).
        request_timeout_s: a client silent this long mid-request is disconnected.

    Raises:
        ConfigError: bad limits, or a non-loopback ``host`` without a token.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8001,
        *,
        token: str | None = None,
        max_sessions: int = 64,
        idle_timeout_s: float = 300.0,
        env_ids: list[str] | None = None,
        request_timeout_s: float = 60.0,
    ) -> None:
        if max_sessions < 1 or idle_timeout_s <= 0 or request_timeout_s <= 0:
            raise ConfigError(
                "need max_sessions >= 1, idle_timeout_s > 0 and request_timeout_s > 0, got "
                f"{max_sessions}, {idle_timeout_s}, {request_timeout_s}"
            )
        check_bind(host, token)
        self.token = token or None
        self.max_sessions = int(max_sessions)
        self.idle_timeout_s = float(idle_timeout_s)
        self.env_ids = None if env_ids is None else list(env_ids)
        if self.env_ids is not None:
            for env_id in self.env_ids:
                spec(env_id)  # unknown ids fail now, with a "did you mean"
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self, request_timeout_s))
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:8001``; env URLs append the env id."""
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host}:{port}"

    @property
    def session_count(self) -> int:
        """How many sessions are alive."""
        with self._lock:
            return len(self._sessions)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> EnvServer:
        """Serve (and reap) in background threads; returns self."""
        targets = [("http", self._httpd.serve_forever), ("reap", self._reap_loop)]
        self._threads += start_threads(targets, "agentgym-env")
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (the CLI's mode); Ctrl-C stops and frees the port."""
        self.start()
        block_until_interrupted(self._threads[0], self.close)

    def close(self) -> None:
        """Stop serving, close every session's env and release the port."""
        self._stop.set()
        if self._threads:
            self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            _close_env(s.env)

    def __enter__(self) -> EnvServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- sessions
    def reap(self) -> int:
        """Close sessions idle longer than ``idle_timeout_s``; returns how many."""
        now = time.monotonic()
        with self._lock:
            idle = [
                sid
                for sid, s in self._sessions.items()
                if now - s.last_used > self.idle_timeout_s and not s.lock.locked()
            ]
            gone = [self._sessions.pop(sid) for sid in idle]
        for s in gone:
            _close_env(s.env)
        return len(gone)

    def _reap_loop(self) -> None:
        period = min(5.0, self.idle_timeout_s / 4)
        while not self._stop.wait(period):
            self.reap()

    def _open(self, body: dict[str, Any]) -> dict[str, Any]:
        env_id, kwargs = body.get("env_id"), body.get("kwargs") or {}
        if not isinstance(env_id, str) or not isinstance(kwargs, dict):
            raise _HTTPError(400, "BadRequest", 'expected {"env_id": str, "kwargs": {...}}')
        if self.env_ids is not None and env_id not in self.env_ids:
            raise _HTTPError(404, "EnvNotFound", f"{env_id!r} is not served here: {self.env_ids}")
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                raise _HTTPError(
                    503,
                    "AtCapacity",
                    f"{self.max_sessions} sessions are open (the cap); close one or retry later",
                )
            sid = secrets.token_urlsafe(16)
            # Reserve the slot now so that concurrent opens cannot pass the cap.
            self._sessions[sid] = _Session(env=None, env_id=env_id)  # type: ignore[arg-type]
        try:
            env = make(env_id, **kwargs)
        except EnvNotFound as e:
            self._forget(sid)
            raise _HTTPError(404, "EnvNotFound", str(e)) from e
        except (TypeError, ValueError) as e:
            self._forget(sid)
            raise _HTTPError(400, "BadEnvKwargs", f"{type(e).__name__}: {e}") from e
        except Exception as e:
            self._forget(sid)
            raise _HTTPError(500, "EnvError", f"{type(e).__name__}: {e}") from e
        with self._lock:
            self._sessions[sid].env = env
        unwrapped = env.unwrapped
        spec = getattr(unwrapped, "rewards", None) or getattr(unwrapped, "reward_spec", None)
        components = dict(getattr(spec, "components", {}) or {})
        max_turns = env.spec.max_episode_steps if env.spec is not None else None
        return {
            "session_id": sid,
            "env_id": env_id,
            "max_turns": max_turns,
            "reward_components": {k: str(v) for k, v in components.items()},
        }

    def _forget(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def _session(self, sid: str) -> _Session:
        with self._lock:
            s = self._sessions.get(sid)
        if s is None or s.env is None:
            raise _HTTPError(
                404, "SessionNotFound", "no such session (closed, or reaped after being idle)"
            )
        return s

    def _call(self, sid: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        s = self._session(sid)
        if not s.lock.acquire(timeout=1.0):
            raise _HTTPError(409, "SessionBusy", "another request on this session is running")
        try:
            s.last_used = time.monotonic()
            try:
                if verb == "reset":
                    obs, info = s.env.reset(seed=body.get("seed"), options=body.get("options"))
                    return {"observation": obs, "info": info}
                action = body.get("action")
                if not isinstance(action, str):
                    raise _HTTPError(400, "BadRequest", 'expected {"action": str}')
                obs, reward, terminated, truncated, info = s.env.step(action)
            except _HTTPError:
                raise
            except Exception as e:  # the env's own failure: the client sees it as such
                raise _HTTPError(500, "EnvError", f"{type(e).__name__}: {e}") from e
            return {
                "observation": obs,
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
                "done": bool(terminated or truncated),
                "info": info,
            }
        finally:
            s.last_used = time.monotonic()
            s.lock.release()

    def _delete(self, sid: str) -> dict[str, Any]:
        s = self._session(sid)
        self._forget(sid)
        _close_env(s.env)
        return {"closed": True}

    def handle(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Answer one authorized request: (HTTP status, JSON body)."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        if not parts or "/" + parts[0] != PREFIX:
            raise _HTTPError(404, "NotFound", f"no route {path}; routes start with {PREFIX}/")
        route = parts[1:]
        if method == "GET" and route == ["health"]:
            return 200, {"status": "ok", "protocol": PROTOCOL_VERSION}
        if method == "GET" and route == ["envs"]:
            return 200, {"envs": self.env_ids if self.env_ids is not None else list_envs()}
        if route[:1] == ["sessions"]:
            if method == "POST" and len(route) == 1:
                return 201, self._open(_object(body))
            if method == "POST" and len(route) == 3 and route[2] in ("reset", "step"):
                return 200, self._call(route[1], route[2], _object(body))
            if method == "DELETE" and len(route) == 2:
                return 200, self._delete(route[1])
        raise _HTTPError(404, "NotFound", f"no route {method} {path}")


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _HTTPError(400, "BadRequest", "the body must be a JSON object")
    return body


def _close_env(env: gymnasium.Env | None) -> None:
    try:
        if env is not None:
            env.close()
    except Exception:  # closing a broken env must not take the server down
        pass


def _handler_for(server: EnvServer, timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietJSONHandler):
        protocol_version = "HTTP/1.1"
        timeout = timeout_s  # socket timeout: a stalled client frees its thread

        def _reply(self, status: int, obj: Any) -> None:
            self.send_json(status, dumps(obj))

        def _serve(self, method: str) -> None:
            if not authorized(self.headers.get("Authorization"), server.token):
                # Say nothing else: not which routes, envs or sessions exist. The body
                # was not read, so this connection cannot carry another request.
                self.close_connection = True
                self._reply(401, {"error": {"type": "Unauthorized", "message": "unauthorized"}})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise _HTTPError(413, "TooLarge", f"bodies are limited to {MAX_BODY_BYTES} B")
                try:
                    body = json.loads(self.rfile.read(length) or b"null") if length else None
                except ValueError as e:
                    raise _HTTPError(400, "BadRequest", "the body is not valid JSON") from e
                status, answer = server.handle(method, self.path, body)
            except _HTTPError as e:
                status, answer = e.status, {"error": {"type": e.kind, "message": e.message}}
            except Exception as e:  # a server bug: report it, keep serving
                status = 500
                answer = {"error": {"type": "ServerError", "message": f"{type(e).__name__}: {e}"}}
            self._reply(status, answer)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

    return Handler
