"""Bearer tokens and safe binding, shared by the env server and the policy server.

The rule: a server binds ``127.0.0.1`` by default. On loopback a token is optional;
on any other interface (``0.0.0.0``, a LAN address, ``""``) it is required, and the
server refuses to start without one. A request whose ``Authorization`` header does
not carry the token gets a bare 401 that says nothing about the server.

Example:
    >>> check_bind("127.0.0.1", None)
    >>> is_loopback("0.0.0.0")
    False
    >>> authorized("Bearer s3cret", "s3cret"), authorized(None, "s3cret")
    (True, False)
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from agentgym.errors import ConfigError

__all__ = ["TOKEN_ENV", "is_loopback", "check_bind", "authorized", "resolve_token"]

#: Environment variable servers and clients read the token from when none is given.
TOKEN_ENV = "AGENTGYM_TOKEN"


def is_loopback(host: str) -> bool:
    """True when ``host`` names only the loopback interface (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "" (every interface) or a host name: not provably loopback
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a bearer token.

    Raises:
        ConfigError: ``host`` is not loopback and ``token`` is empty, or the token
            is too short to be a secret.
    """
    if token is not None and len(token) < 8:
        raise ConfigError(
            f"the bearer token is {len(token)} characters long; use at least 8 "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not token and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host or 'every interface'!r} without a bearer token: anyone "
            f"who can reach it could use it. Set --token or ${TOKEN_ENV}, or bind 127.0.0.1"
        )


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (always, when no token)."""
    if not token:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    # Constant-time: the comparison must not leak how much of a guess was right.
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


def resolve_token(token: str | None) -> str | None:
    """``token`` if given, else ``$AGENTGYM_TOKEN``, else None (empty counts as none)."""
    return token or os.environ.get(TOKEN_ENV) or None
