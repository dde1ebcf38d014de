"""The wire format of the agentgym env server (protocol version 1), in one place.

Every body is JSON; every route but none is behind the bearer token when the server
has one. ``{sid}`` is a session id the server returned.

====================================  ===========================================
request                               answer (200 unless noted)
====================================  ===========================================
``GET /v1/health``                    ``{"status": "ok", "protocol": 1}``
``GET /v1/envs``                      ``{"envs": [id, ...]}``
``POST /v1/sessions``                 201 ``{"session_id", "env_id", "max_turns",
``{"env_id", "kwargs"}``              "reward_components"}``; 503 at the session cap
``POST /v1/sessions/{sid}/reset``     ``{"observation": [messages], "info": {...}}``
``{"seed", "options"}``
``POST /v1/sessions/{sid}/step``      ``{"observation", "reward", "terminated",
``{"action": str}``                   "truncated", "done", "info"}``
``DELETE /v1/sessions/{sid}``         ``{"closed": true}``
====================================  ===========================================

Errors are ``{"error": {"type": ..., "message": ...}}`` with status 400 (bad
request, bad env kwargs), 401 (missing or wrong token: nothing else is said), 404
(unknown route, env id or session: sessions idle too long are reaped), 409 (the
session is busy with another request), 413 (body too large), 500 with type
``EnvError`` (the env itself raised), 503 (at the session cap).

The field names ``observation``, ``reward`` and ``done`` are the ones OpenEnv's HTTP
responses use; the rest (sessions over plain HTTP, ``terminated``/``truncated``,
chat-message observations) is agentgym's own.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["PROTOCOL_VERSION", "PREFIX", "MAX_BODY_BYTES", "dumps"]

#: Bumped on any incompatible change of the routes or bodies above.
PROTOCOL_VERSION = 1
#: Every route starts with this.
PREFIX = "/v1"
#: Larger request bodies are refused with 413.
MAX_BODY_BYTES = 8 * 1024 * 1024


def _plain(x: Any) -> Any:
    if hasattr(x, "item") and callable(x.item):  # numpy scalar
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    return repr(x)


def dumps(obj: Any) -> bytes:
    """JSON bytes of ``obj``; numpy values become plain numbers, anything else its repr."""
    return json.dumps(obj, default=_plain, ensure_ascii=False).encode()
