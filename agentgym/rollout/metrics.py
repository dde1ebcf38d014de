"""Rollout metrics and greedy evaluation: what a batch of trajectories scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from agentgym.rollout.collector import CollectConfig, Collector
from agentgym.trajectory import Trajectory

if TYPE_CHECKING:
    from agentgym.policies.base import Policy

__all__ = ["rollout_metrics", "evaluate"]


def rollout_metrics(trajs: Sequence[Trajectory]) -> dict[str, float]:
    """``rollout/…`` and ``reward/…`` metrics of a batch of trajectories."""
    n = len(trajs)
    scorable = [t for t in trajs if t.scorable and t.status != "env_error"]
    out: dict[str, float] = {
        "rollout/episodes": float(n),
        "rollout/turns_mean": float(np.mean([len(t.turns) for t in trajs])) if n else 0.0,
        "rollout/env_errors": float(sum(t.status == "env_error" for t in trajs)),
        "rollout/infra_errors": float(sum(t.status == "infra_error" for t in trajs)),
        "rollout/truncated": float(sum(t.status == "truncated" for t in trajs)),
        "reward/success_rate": float(np.mean([bool(t.success) for t in scorable]))
        if scorable
        else 0.0,
        "reward/total_mean": float(np.mean([t.total_reward for t in scorable]))
        if scorable
        else 0.0,
        "reward/outcome_mean": float(np.mean([t.outcome or 0.0 for t in scorable]))
        if scorable
        else 0.0,
    }
    comps: dict[str, list[float]] = {}
    for t in scorable:
        for turn in t.turns:
            for k, v in turn.reward_components.items():
                comps.setdefault(k, []).append(v)
    out.update({f"reward/{k}_per_turn": float(np.mean(v)) for k, v in comps.items()})
    return out


def evaluate(
    policy: Policy,
    env_id: str,
    seeds: Sequence[int],
    collect: CollectConfig | None = None,
) -> dict[str, Any]:
    """Greedy success rate of ``policy`` on ``seeds`` (one episode per seed).

    ``collect`` gives the turn and token limits, env kwargs and history (default:
    :class:`CollectConfig`'s); its group size and sampling temperature are replaced by
    one greedy sample per task.

    Returns:
        ``success_rate``, ``outcome_mean`` and the ``trajectories``.
    """
    base = collect or CollectConfig()
    greedy = replace(base.sampling, temperature=0.0, top_p=1.0)
    config = replace(base, group_size=1, sampling=greedy, progress=False)
    trajs = Collector(policy, config).collect(env_id, list(seeds))
    m = rollout_metrics(trajs)
    return {
        "success_rate": m["reward/success_rate"],
        "outcome_mean": m["reward/outcome_mean"],
        "trajectories": trajs,
    }
