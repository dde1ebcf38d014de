"""Advantage estimators, registered by name.

Every estimator has one signature: ``(rewards, group_ids) -> advantages``
with ``rewards`` a float array of shape ``[N]`` (one scalar per trajectory;
NaN marks an unscorable one, e.g. an infrastructure failure) and
``group_ids`` an array of shape ``[N]`` naming each trajectory's group (the
G samples of one task). NaN rewards are left out of every baseline and get
advantage 0. The trainer looks estimators up with :func:`get`; add your own
with :func:`register`. Turn-level estimators (``level = "turn"``, e.g.
``gigpo``, ``turn_grpo``, ``turn_grpo_immediate``) also give one advantage per
turn from the turn rewards::

    @agentgym.rl.advantages.register("my_est")
    def my_est(rewards, group_ids):
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from agentgym.catalog import Registry
from agentgym.errors import ConfigError
from agentgym.trajectory import Trajectory

__all__ = [
    "Estimator",
    "ESTIMATORS",
    "register",
    "get",
    "available",
    "group_advantages",
    "group_stats",
    "GroupStats",
    "trajectory_rewards",
    "compute_advantages",
    "turn_returns",
    "GiGPO",
    "TurnGRPO",
]


class Estimator(Protocol):
    """``(rewards [N], group_ids [N]) -> advantages [N]``."""

    def __call__(self, rewards: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
        """Return one advantage per trajectory."""
        ...


#: The estimators by name; installed packages add theirs through the
#: ``agentgym.estimators`` entry-point group.
ESTIMATORS: Registry[Estimator] = Registry("advantage estimator", "agentgym.estimators")


def register(name: str, *, override: bool = False) -> Callable[[Estimator], Estimator]:
    """Decorator registering an estimator as ``name`` (taken names raise unless ``override``)."""
    return ESTIMATORS.register(name, override=override)


def get(name: str) -> Estimator:
    """The estimator registered as ``name``; unknown names get a "did you mean"."""
    return ESTIMATORS.get(name)


def available() -> list[str]:
    """Names of the registered estimators."""
    return ESTIMATORS.available()


def _groups(rewards: np.ndarray, group_ids: np.ndarray):
    """Yield (indices of scorable members) per group."""
    rewards = np.asarray(rewards, dtype=np.float64)
    group_ids = np.asarray(group_ids)
    if rewards.shape != group_ids.shape or rewards.ndim != 1:
        raise ConfigError(
            f"rewards and group_ids must be 1-D arrays of the same shape, "
            f"got {rewards.shape} and {group_ids.shape}"
        )
    ok = ~np.isnan(rewards)
    for g in dict.fromkeys(group_ids.tolist()):
        idx = np.flatnonzero((group_ids == g) & ok)
        yield g, idx


@register("grpo")
def grpo(rewards: np.ndarray, group_ids: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """GRPO: ``(r - mean_g) / (std_g + eps)``, std with ``ddof=1``.

    Groups with one scorable member, or whose rewards are all equal, get 0.
    """
    r = np.asarray(rewards, dtype=np.float64)
    adv = np.zeros_like(r)
    for _, idx in _groups(r, group_ids):
        if len(idx) < 2:
            continue
        x = r[idx]
        std = x.std(ddof=1)
        if std == 0:
            continue
        adv[idx] = (x - x.mean()) / (std + eps)
    return adv


@register("dr_grpo")
def dr_grpo(rewards: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """Dr. GRPO: ``r - mean_g`` (no division by the std, which biases toward easy groups)."""
    r = np.asarray(rewards, dtype=np.float64)
    adv = np.zeros_like(r)
    for _, idx in _groups(r, group_ids):
        if len(idx) < 2:
            continue
        adv[idx] = r[idx] - r[idx].mean()
    return adv


@register("rloo")
def rloo(rewards: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """RLOO: ``r_i - mean_{j != i} r_j`` (leave-one-out baseline over the scorable members)."""
    r = np.asarray(rewards, dtype=np.float64)
    adv = np.zeros_like(r)
    for _, idx in _groups(r, group_ids):
        k = len(idx)
        if k < 2:
            continue
        x = r[idx]
        adv[idx] = x - (x.sum() - x) / (k - 1)
    return adv


def group_advantages(
    name: str, rewards: Sequence[float] | np.ndarray, group_ids: Sequence | np.ndarray
) -> np.ndarray:
    """Run the estimator ``name`` on plain arrays.

    Example:
        >>> group_advantages("rloo", [1.0, 0.0, 0.0], ["a", "a", "a"])
        array([ 1. , -0.5, -0.5])
    """
    r = np.asarray(rewards, dtype=np.float64)
    adv = np.asarray(get(name)(r, np.asarray(group_ids)), dtype=np.float64)
    adv[np.isnan(r)] = 0.0
    return adv


@dataclass(frozen=True)
class GroupStats:
    """Counts that tell how much signal a batch carries."""

    groups: int
    """Number of groups."""
    zero_signal_groups: int
    """Groups whose scorable rewards are all equal (or that have < 2): advantage 0."""
    excluded: int
    """Trajectories with NaN reward (e.g. infra_error), left out of the baselines."""

    @property
    def zero_signal_fraction(self) -> float:
        """Share of groups that give no learning signal."""
        return self.zero_signal_groups / self.groups if self.groups else 0.0


def group_stats(
    rewards: Sequence[float] | np.ndarray, group_ids: Sequence | np.ndarray
) -> GroupStats:
    """Count groups, zero-signal groups and excluded (NaN) rewards."""
    r = np.asarray(rewards, dtype=np.float64)
    groups = zero = 0
    for _, idx in _groups(r, np.asarray(group_ids)):
        groups += 1
        if len(idx) < 2 or np.all(r[idx] == r[idx][0]):
            zero += 1
    return GroupStats(groups, zero, int(np.isnan(r).sum()))


RewardSource = Literal["total", "outcome"]


def trajectory_rewards(trajs: Sequence[Trajectory], source: RewardSource = "total") -> np.ndarray:
    """One scalar per trajectory; NaN for those that cannot be scored.

    ``total`` sums the turn rewards (outcome included, as envs emit it as a
    component); ``outcome`` takes the episode's outcome score only.
    """
    if source not in ("total", "outcome"):
        raise ConfigError(f"reward source must be 'total' or 'outcome', got {source!r}")
    out = np.empty(len(trajs), dtype=np.float64)
    for i, t in enumerate(trajs):
        # An env's own bug is not the agent's doing either: no score, no baseline.
        if not t.scorable or t.status == "env_error":
            out[i] = np.nan
        elif source == "total":
            out[i] = t.total_reward
        else:
            out[i] = t.outcome if t.outcome is not None else 0.0
    return out


def turn_returns(traj: Trajectory, gamma: float = 1.0) -> np.ndarray:
    """Discounted return-to-go of each turn, shape ``[turns]``."""
    out = np.zeros(len(traj.turns))
    acc = 0.0
    for k in range(len(traj.turns) - 1, -1, -1):
        acc = traj.turns[k].reward + gamma * acc
        out[k] = acc
    return out


def _state_key(traj: Trajectory, k: int) -> str:
    """The state the agent acted from at turn ``k``.

    The env's ``info["state"]`` after turn ``k - 1`` when it reports one (toy-text games
    do), else what the agent saw: the env's latest messages (turn 0: the reset messages,
    the same for every sample of a group).
    """
    if k > 0 and "state" in traj.turns[k - 1].info:
        return f"state:{traj.turns[k - 1].info['state']!r}"
    seen = traj.initial_observation if k == 0 else traj.turns[k - 1].observation
    return "\x1e".join(f"{m.get('role')}:{m.get('content')}" for m in seen)


class GiGPO:
    """Group-in-group advantages: episode-level GRPO plus step-level credit.

    Within each group, turns taken from the same state form a step group: the same
    ``info["state"]`` reported by the env after the previous turn (toy-text games
    report their game state), else identical env messages (the observation text,
    which may also say how the agent got there); their discounted returns-to-go are
    normalised within it, so the agent learns which action was better *in
    that state*. Per-turn advantage = episode advantage + ``step_weight`` x
    step advantage. States seen once get no step term.

    Args:
        step_weight: weight of the step-level term.
        gamma: discount of the returns-to-go.
        episode: trajectory-level estimator for the episode term.
    """

    level = "turn"

    def __init__(self, step_weight: float = 1.0, gamma: float = 0.95, episode: str = "grpo"):
        self.step_weight, self.gamma, self.episode = step_weight, gamma, episode

    def __call__(self, rewards: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
        """Episode-level part only (for plain reward arrays)."""
        return get(self.episode)(rewards, group_ids)

    def turn_advantages(
        self, trajs: Sequence[Trajectory], rewards: np.ndarray, group_ids: np.ndarray
    ) -> list[np.ndarray]:
        """One array of per-turn advantages per trajectory."""
        episode = group_advantages(self.episode, rewards, group_ids)
        out = [np.full(len(t.turns), episode[i]) for i, t in enumerate(trajs)]
        returns = [turn_returns(t, self.gamma) for t in trajs]
        buckets: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for i, t in enumerate(trajs):
            if np.isnan(rewards[i]):
                out[i][:] = 0.0
                continue
            for k in range(len(t.turns)):
                buckets.setdefault((str(group_ids[i]), _state_key(t, k)), []).append((i, k))
        for members in buckets.values():
            if len(members) < 2:
                continue
            r = np.array([returns[i][k] for i, k in members])
            std = r.std(ddof=1)
            if std == 0:
                continue
            for (i, k), a in zip(members, (r - r.mean()) / (std + 1e-6), strict=True):
                out[i][k] += self.step_weight * a
        return out


register("gigpo")(GiGPO())


class TurnGRPO:
    """Per-turn GRPO: each turn's return-to-go, normalised among the group's turns at its index.

    For trajectory ``i`` of a group and turn index ``k``, with ``R[i, k]`` the discounted
    return-to-go of that turn (:func:`turn_returns`), the advantage is
    ``(R[i, k] - mean_j R[j, k]) / (std_j R[j, k] + eps)`` over the group's scorable
    trajectories that reached turn ``k`` (sample std, ``ddof=1``). Turn 0 is plain GRPO
    on the (discounted) total reward; a later turn is judged only by what came from it
    on, against the other samples' same turn, so a good call followed by a bad answer
    still credits the call. Unlike :class:`GiGPO` it needs no identical observations:
    when each turn's observation differs per sample (a tool result that depends on the
    call), GiGPO's step groups are singletons, while turn indices always line up.
    Turn indices reached by one scorable member, or with equal returns, get 0.

    Args:
        gamma: discount of the returns-to-go.
        eps: added to the std.

    Example:
        Two samples of one task. Both call a tool (rewards 1 and 0: only the first called
        the right one), then both answer (reward 1 each): turn 0 returns 2 and 1, turn 1
        returns 1 and 1. The calls are told apart; the equal answers get 0.

        >>> from agentgym.trajectory import Trajectory, Turn
        >>> def episode(rewards):
        ...     t = Trajectory(env_id="x/Y-v0", group_id="g", status="done")
        ...     t.turns = [Turn(action="a", observation=[], reward=r) for r in rewards]
        ...     return t
        >>> pair = [episode([1.0, 1.0]), episode([0.0, 1.0])]
        >>> adv = TurnGRPO().turn_advantages(pair, np.array([2.0, 1.0]), np.array(["g", "g"]))
        >>> [a.round(3).tolist() for a in adv]
        [[0.707, 0.0], [-0.707, 0.0]]
    """

    level = "turn"

    def __init__(self, gamma: float = 1.0, eps: float = 1e-6):
        self.gamma, self.eps = gamma, eps

    def __call__(self, rewards: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
        """Trajectory-level part only (GRPO, for plain reward arrays)."""
        return get("grpo")(rewards, group_ids)

    def turn_advantages(
        self, trajs: Sequence[Trajectory], rewards: np.ndarray, group_ids: np.ndarray
    ) -> list[np.ndarray]:
        """One array of per-turn advantages per trajectory (shape ``[turns]`` each).

        The returns come from the turn rewards; ``rewards`` (shape ``[N]``) only marks
        the unscorable trajectories (NaN: advantage 0, left out of every baseline).
        """
        out = [np.zeros(len(t.turns)) for t in trajs]
        returns = [turn_returns(t, self.gamma) for t in trajs]
        for _, idx in _groups(rewards, group_ids):
            depth = max((len(trajs[i].turns) for i in idx), default=0)
            for k in range(depth):
                members = [i for i in idx if len(trajs[i].turns) > k]
                if len(members) < 2:
                    continue
                r = np.array([returns[i][k] for i in members])
                std = r.std(ddof=1)
                if std == 0:
                    continue
                for i, a in zip(members, (r - r.mean()) / (std + self.eps), strict=True):
                    out[i][k] = a
        return out


register("turn_grpo")(TurnGRPO())
# Each turn judged by its own reward: for envs whose turn rewards already carry the credit
# (Lookup's found on the call, grounded and outcome on the answer).
register("turn_grpo_immediate")(TurnGRPO(gamma=0.0))


def compute_advantages(
    name: str,
    trajs: Sequence[Trajectory],
    source: RewardSource = "total",
    penalties: np.ndarray | None = None,
) -> tuple[list[np.ndarray], GroupStats]:
    """Per-turn advantages (one array per trajectory) and group statistics.

    Trajectory-level estimators give every turn of a trajectory the same value.
    ``penalties`` (shape ``[N]``, e.g. beta x KL to a reference) are subtracted from
    the rewards before the estimator sees them; the group statistics count the raw
    rewards.
    """
    raw = trajectory_rewards(trajs, source)
    rewards = raw if penalties is None else raw - np.asarray(penalties, dtype=np.float64)
    gids = np.asarray([t.group_id for t in trajs])
    est = get(name)
    if getattr(est, "level", "trajectory") == "turn":
        per_turn = est.turn_advantages(trajs, rewards, gids)  # type: ignore[attr-defined]
    else:
        adv = group_advantages(name, rewards, gids)
        per_turn = [np.full(len(t.turns), adv[i]) for i, t in enumerate(trajs)]
    return per_turn, group_stats(raw, gids)
