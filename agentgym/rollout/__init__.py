"""Rollout: chat templates to token ids, the collector, rollout metrics and evaluation.

- :mod:`agentgym.rollout.render`: messages to token ids, incrementally (the TITO ledger).
- :mod:`agentgym.rollout.collector`: :class:`Collector` drives a policy through envs.
- :mod:`agentgym.rollout.metrics`: :func:`rollout_metrics` and greedy :func:`evaluate`.

Rollout depends on the env contract and on :mod:`agentgym.policies.base` (the
``Policy`` protocol), never on a particular backend.
"""

from agentgym.rollout.collector import CollectConfig, Collector, collect
from agentgym.rollout.metrics import evaluate, rollout_metrics
from agentgym.rollout.render import ChatRenderer, DriftReport, EpisodeTokens, check_drift

__all__ = [
    "CollectConfig",
    "Collector",
    "collect",
    "rollout_metrics",
    "evaluate",
    "ChatRenderer",
    "EpisodeTokens",
    "DriftReport",
    "check_drift",
]
