"""One episode's bookkeeping: its trajectory, token ledger, turn seeds and end states.

The collector drives many of these at once; everything here is per episode and
independent of how (or where) the env and the policy run.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from agentgym.errors import InfraError
from agentgym.policies.base import Generation
from agentgym.rollout.render import ChatRenderer, EpisodeTokens
from agentgym.trajectory import Trajectory, Turn, _json_safe

__all__ = ["Episode", "turn_seed", "error_text"]

_MASK = (1 << 64) - 1


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def turn_seed(seed: int | None, task: int, env_seed: int, sample: int, turn: int) -> int | None:
    """The sampler seed of one turn, from (sampling seed, task, env seed, sample, turn).

    Independent of scheduling: the same run gives every turn the same seed however
    episodes interleave, and a resumed run samples what the killed one would have.

    Example:
        >>> turn_seed(0, 1, 7, 0, 2) == turn_seed(0, 1, 7, 0, 2) != turn_seed(0, 1, 7, 1, 2)
        True
        >>> turn_seed(None, 1, 7, 0, 2) is None
        True
    """
    if seed is None:
        return None
    h = 0
    for part in (seed, task, env_seed, sample, turn):
        h = _splitmix(h ^ (int(part) & _MASK))
    return h % (2**31 - 1)


def error_text(e: BaseException) -> str:
    """The end of ``e``'s traceback, as recorded on a trajectory."""
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    return "".join(tb[-4:])[-2000:]


# Kept elsewhere in the trajectory, or bulky and the same for every episode.
_SKIP_INFO = {"reward_components", "episode", "TimeLimit.truncated", "tool_schemas"}


def jsonable_info(info: Any) -> dict[str, Any]:
    """``info`` without the keys the trajectory keeps elsewhere, JSON-safe."""
    if not isinstance(info, dict):
        return {}
    return _json_safe({k: v for k, v in info.items() if k not in _SKIP_INFO})


@dataclass
class Episode:
    """One (task, sample) of a collection, across its attempts."""

    task_index: int
    seed: int
    sample: int
    traj: Trajectory
    tokens: EpisodeTokens
    attempt: int = 0
    retries: list[dict[str, Any]] = field(default_factory=list)
    state: str = "new"
    """``open``, ``gen``, ``step``, ``close`` (waiting on that), ``done``."""
    ticket: int | None = None
    has_env: bool = False
    deadline: float = float("inf")
    wants: int = 0
    """Times it asked for generation (tells a stale queue entry from the current one)."""
    pending_text: str = ""
    pending_gen: Generation | None = None

    @property
    def key(self) -> tuple[int, int]:
        """(task index, sample index)."""
        return (self.task_index, self.sample)

    @classmethod
    def new(
        cls,
        env_id: str,
        task_index: int,
        seed: int,
        sample: int,
        options: dict[str, Any] | None,
        renderer: ChatRenderer,
        history: int | None,
    ) -> Episode:
        """A fresh attempt's state."""
        traj = Trajectory(
            env_id=env_id,
            seed=int(seed),
            options=dict(options) if options else None,
            group_id=f"{env_id}:{task_index}:{seed}",
            sample_index=sample,
            metadata={"task_index": task_index},
        )
        return cls(task_index, int(seed), sample, traj, EpisodeTokens(renderer, history))

    def restart(self, renderer: ChatRenderer, history: int | None) -> None:
        """Start the next attempt from the same seed, keeping the record of retries."""
        self.retries.append(
            {"attempt": self.attempt, "status": self.traj.status, "error": self.traj.error}
        )
        fresh = Episode.new(
            self.traj.env_id,
            self.task_index,
            self.seed,
            self.sample,
            self.traj.options,
            renderer,
            history,
        )
        self.traj, self.tokens = fresh.traj, fresh.tokens
        self.attempt += 1
        self.state, self.ticket, self.has_env = "new", None, False
        self.traj.metadata["retries"] = list(self.retries)

    def fail(self, e: BaseException) -> None:
        """End as ``infra_error`` (for :class:`InfraError`) or ``env_error``."""
        self.traj.status = "infra_error" if isinstance(e, InfraError) else "env_error"
        self.traj.error = error_text(e)
        if self.traj.status == "infra_error":
            self.traj.outcome, self.traj.success = None, None

    def started(self, obs: Any, info: Any) -> None:
        """Record the first observation."""
        self.traj.initial_observation = list(obs)
        self.traj.metadata["reset_info"] = jsonable_info(info)
        self.tokens.start(list(obs))

    def sampled(self, gen: Generation, tokenizer: Any) -> str:
        """Record a sampled turn in the ledger; returns the action text."""
        text = tokenizer.decode(gen.token_ids, skip_special_tokens=True)
        self.tokens.add_turn(list(gen.token_ids), list(gen.logprobs), gen.finish_reason, text)
        self.pending_text, self.pending_gen = text, gen
        return text

    def stepped(self, result: Any) -> bool:
        """Record the env's answer to the pending action; True when the episode ended."""
        obs, reward, terminated, truncated, info = result
        comps = dict(info.get("reward_components", {})) if isinstance(info, dict) else {}
        finish = self.pending_gen.finish_reason if self.pending_gen else "stop"
        self.traj.turns.append(
            Turn(
                action=self.pending_text,
                observation=list(obs),
                reward=float(reward),
                reward_components={k: float(v) for k, v in comps.items()},
                terminated=bool(terminated),
                truncated=bool(truncated),
                info=jsonable_info(info),
                finish_reason=finish,
            )
        )
        if isinstance(info, dict) and "outcome" in info:
            self.traj.outcome = float(info["outcome"])
            self.traj.success = bool(info.get("success", False))
        if terminated or truncated:
            self.traj.status = "done" if terminated else "truncated"
            if truncated:
                self.traj.metadata["truncated_by"] = "max_turns"
            return True
        self.tokens.add_observation(list(obs))
        return False

    def step_failed(self, e: BaseException) -> None:
        """The env raised on the pending action: keep the turn's action, record the error."""
        finish = self.pending_gen.finish_reason if self.pending_gen else "stop"
        self.traj.turns.append(
            Turn(action=self.pending_text, observation=[], reward=0.0, finish_reason=finish)
        )
        self.fail(e)

    def seal(self) -> Trajectory:
        """Move the ledger into the trajectory; returns it, ready to write."""
        if self.tokens.per_turn is None:
            self.tokens.trim_trailing_prompt()
            self.traj.ledger = self.tokens.ledger
        else:
            self.traj.per_turn_ledgers = self.tokens.per_turn
        if self.retries:
            self.traj.metadata["retries"] = list(self.retries)
        return self.traj
