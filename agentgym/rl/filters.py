"""Which collected trajectories reach the update.

- ``infra_error`` episodes never do (the trainer leaves them out, and the
  estimators give them no baseline weight);
- groups whose scorable rewards are all equal carry no signal under group-relative
  estimators: ``FilterConfig.zero_variance = "drop"`` leaves them out of the update,
  so they no longer dilute the loss denominators (DAPO's dynamic sampling);
  ``"resample"`` also collects fresh tasks to fill the batch (see the loop);
- ``FilterConfig.mask_truncated`` leaves out episodes cut by a turn or token limit
  (they still count in their group's baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentgym.rl.advantages import RewardSource, trajectory_rewards
from agentgym.rl.config import FilterConfig
from agentgym.trajectory import Trajectory

__all__ = ["informative_groups", "select"]


def informative_groups(trajs: Sequence[Trajectory], source: RewardSource = "total") -> set[str]:
    """Group ids with at least two scorable members whose rewards differ.

    Example:
        >>> from agentgym.trajectory import Trajectory, Turn
        >>> def traj(g, r):
        ...     return Trajectory(env_id="e", seed=0, group_id=g,
        ...                       turns=[Turn(action="a", observation=[], reward=r)])
        >>> sorted(informative_groups([traj("a", 1.0), traj("a", 0.0), traj("b", 1.0),
        ...                            traj("b", 1.0)]))
        ['a']
    """
    rewards = trajectory_rewards(trajs, source)
    by_group: dict[str, list[float]] = {}
    for t, r in zip(trajs, rewards, strict=True):
        if not np.isnan(r):
            by_group.setdefault(str(t.group_id), []).append(float(r))
    return {g for g, rs in by_group.items() if len(rs) >= 2 and max(rs) != min(rs)}


def select(
    trajs: Sequence[Trajectory],
    advantages: Sequence[Any],
    config: FilterConfig,
    source: RewardSource = "total",
) -> tuple[list[Trajectory], list[Any], dict[str, float]]:
    """The trajectories (and their advantages) the update sees, with counts as metrics."""
    keep_groups = None
    if config.zero_variance != "keep":
        keep_groups = informative_groups(trajs, source)
    out_t, out_a = [], []
    dropped = masked = 0
    for t, a in zip(trajs, advantages, strict=True):
        if keep_groups is not None and str(t.group_id) not in keep_groups:
            dropped += 1
            continue
        if config.mask_truncated and t.status == "truncated":
            masked += 1
            continue
        out_t.append(t)
        out_a.append(a)
    return (
        out_t,
        out_a,
        {"filter/dropped": float(dropped), "filter/masked_truncated": float(masked)},
    )
