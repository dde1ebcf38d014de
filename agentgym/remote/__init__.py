"""Environments over HTTP: :class:`EnvServer` serves them, :class:`RemoteEnv` uses them.

``agentgym.make("remote:http://HOST:PORT/agentgym/Wordle-v0")`` gives a
:class:`RemoteEnv`; ``agentgym serve-env`` runs an :class:`EnvServer`. The wire
format is in :mod:`agentgym.remote.protocol`, tokens and binding rules in
:mod:`agentgym.remote.auth`. Standard library only: no torch, no web framework.
"""

from agentgym.remote.auth import TOKEN_ENV, check_bind
from agentgym.remote.client import RemoteEnv, RemoteEnvError, RemoteError, make_remote
from agentgym.remote.server import EnvServer

__all__ = [
    "EnvServer",
    "RemoteEnv",
    "RemoteError",
    "RemoteEnvError",
    "make_remote",
    "check_bind",
    "TOKEN_ENV",
]
