"""The Collector: drives a policy through environments, token-exact.

N tasks (seeds) x G samples each: the G copies of a task are reset with the
same seed and options and share a ``group_id``. Generation is batched across
every live episode; env steps may run on a thread pool. An env that raises
ends its episode with status ``env_error`` (``infra_error`` for
infrastructure failures) and the run goes on; finished trajectories are
appended to the JSONL file as they finish, so nothing collected is lost.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import gymnasium

from agentgym.errors import ConfigError, InfraError
from agentgym.policies.base import Policy, Request, SamplingParams
from agentgym.registry import make
from agentgym.rollout.render import ChatRenderer, EpisodeTokens
from agentgym.trajectory import Trajectory, Turn

__all__ = ["CollectConfig", "Collector", "collect"]


@dataclass
class CollectConfig:
    """How to collect rollouts."""

    group_size: int = 1
    """G: samples per task (copies reset with the same seed/options)."""
    max_turns: int | None = None
    """Turn limit overriding the env's registered one (None keeps it)."""
    max_episode_tokens: int = 4096
    """Token budget per episode (prompt + observations + samples)."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    """Temperature, top-p, tokens per turn and seed of the sampler."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the env constructor."""
    history: int | None = None
    """Turns of conversation kept in the prompt: None = all (one token-exact sequence
    per episode); k = the system prompt plus the last k turns before the newest
    observation (0: the newest observation only), one training sample per turn.
    Bounds the prompt on long episodes and makes the current state salient to
    small models."""
    env_workers: int = 1
    """Threads stepping envs in parallel (useful for sandbox/tool envs)."""
    progress: bool = True
    """Show a progress bar (tqdm) over episodes."""

    def __post_init__(self) -> None:
        if self.group_size < 1:
            raise ConfigError(f"group_size must be >= 1, got {self.group_size}")
        if self.max_turns is not None and self.max_turns < 1:
            raise ConfigError(f"max_turns must be >= 1 or None, got {self.max_turns}")
        if self.max_episode_tokens < 2:
            raise ConfigError(f"max_episode_tokens must be >= 2, got {self.max_episode_tokens}")
        if self.history is not None and self.history < 0:
            raise ConfigError(f"history must be >= 0 or None, got {self.history}")
        if self.env_workers < 1:
            raise ConfigError(f"env_workers must be >= 1, got {self.env_workers}")


@dataclass
class _Episode:
    env: gymnasium.Env | None
    traj: Trajectory
    tokens: EpisodeTokens


def _error_text(e: BaseException) -> str:
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    return "".join(tb[-4:])[-2000:]


class Collector:
    """Collects trajectories of one policy on registered environments.

    Example:
        >>> from agentgym.policies.scripted import ScriptedPolicy
        >>> from agentgym.policies.tinymodels import build_tiny_tokenizer
        >>> policy = ScriptedPolicy(lambda messages: "<guess>crane</guess>", build_tiny_tokenizer())
        >>> collector = Collector(policy, CollectConfig(group_size=2, progress=False))
        >>> trajs = collector.collect("agentgym/Wordle-v0", seeds=range(3))
        >>> len(trajs), trajs[0].group_id == trajs[1].group_id
        (6, True)
    """

    def __init__(
        self,
        policy: Policy,
        config: CollectConfig | None = None,
        renderer: ChatRenderer | None = None,
    ) -> None:
        self.policy = policy
        self.config = config or CollectConfig()
        self.renderer = renderer or ChatRenderer(policy.tokenizer)
        self._calls = 0

    # ------------------------------------------------------------------ public
    def collect(
        self,
        env_id: str,
        seeds: Sequence[int],
        options: dict[str, Any] | None = None,
        out: str | Path | IO[str] | None = None,
        env_factory: Callable[[], gymnasium.Env] | None = None,
    ) -> list[Trajectory]:
        """Roll out ``len(seeds) * group_size`` episodes; return their trajectories.

        Args:
            env_id: a registered id (also recorded on each trajectory).
            seeds: one task per seed.
            options: ``reset`` options shared by all tasks.
            out: JSONL path or open file; trajectories are appended as they finish.
            env_factory: build envs with this instead of ``make(env_id)``.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        handle, own = _open_out(out)
        bar = tqdm(
            total=len(seeds) * cfg.group_size,
            desc=f"rollout {env_id}",
            unit="ep",
            disable=not cfg.progress,
        )
        done: list[Trajectory] = []

        def finish(ep: _Episode) -> None:
            if ep.tokens.per_turn is None:
                ep.tokens.trim_trailing_prompt()
                ep.traj.ledger = ep.tokens.ledger
            else:
                ep.traj.per_turn_ledgers = ep.tokens.per_turn
            if ep.env is not None:
                try:
                    ep.env.close()
                except Exception as e:  # closing must not lose the trajectory
                    ep.traj.metadata["close_error"] = f"{type(e).__name__}: {e}"
            done.append(ep.traj)
            if handle is not None:
                handle.write(ep.traj.to_json() + "\n")
                handle.flush()
            bar.update(1)

        try:
            live = self._start(env_id, seeds, options, env_factory, finish)
            pool = ThreadPoolExecutor(cfg.env_workers) if cfg.env_workers > 1 else None
            try:
                while live:
                    live = self._advance(live, finish, pool)
            finally:
                if pool is not None:
                    pool.shutdown(wait=True)
        finally:
            bar.close()
            if own and handle is not None:
                handle.close()
        # Finishing order depends on episode length; return in task-then-sample order.
        return sorted(done, key=lambda t: (t.metadata["task_index"], t.sample_index))

    # --------------------------------------------------------------- internals
    def _start(self, env_id, seeds, options, env_factory, finish) -> list[_Episode]:
        cfg = self.config
        live: list[_Episode] = []
        for task_idx, seed in enumerate(seeds):
            for g in range(cfg.group_size):
                traj = Trajectory(
                    env_id=env_id,
                    seed=int(seed),
                    options=dict(options) if options else None,
                    group_id=f"{env_id}:{task_idx}:{seed}",
                    sample_index=g,
                    metadata={"task_index": task_idx},
                )
                ep = _Episode(None, traj, EpisodeTokens(self.renderer, cfg.history))
                try:
                    if env_factory is not None:
                        ep.env = env_factory()
                    else:
                        kwargs = dict(cfg.env_kwargs)
                        if cfg.max_turns is not None:
                            kwargs["max_turns"] = cfg.max_turns
                        ep.env = make(env_id, **kwargs)
                    obs, info = ep.env.reset(seed=int(seed), options=options)
                    traj.initial_observation = list(obs)
                    traj.metadata["reset_info"] = _jsonable_info(info)
                    ep.tokens.start(list(obs))
                except Exception as e:
                    _fail(traj, e)
                    finish(ep)
                    continue
                live.append(ep)
        return live

    def _advance(self, live: list[_Episode], finish, pool) -> list[_Episode]:
        cfg = self.config
        ready, requests = [], []
        for ep in live:
            prompt = ep.tokens.prompt_ids()
            budget = cfg.max_episode_tokens - len(prompt)
            if budget <= 0:
                ep.traj.status = "truncated"
                ep.traj.metadata["truncated_by"] = "token_budget"
                finish(ep)
                continue
            ready.append(ep)
            requests.append(
                Request(
                    prompt_ids=prompt,
                    messages=ep.tokens.context(),
                    max_new_tokens=budget,
                )
            )
        if not ready:
            return []
        params = cfg.sampling
        if params.seed is not None:  # a fresh but reproducible stream per call
            params = replace(params, seed=params.seed + 1_000_003 * self._calls)
        self._calls += 1
        try:
            gens = self.policy.generate(requests, params)
        except Exception as e:
            # The policy backend failed: nobody's fault in the envs; keep what we have.
            for ep in ready:
                _fail(ep.traj, InfraError(f"policy.generate failed: {type(e).__name__}: {e}"))
                finish(ep)
            return []
        tok = self.policy.tokenizer
        texts = []
        for ep, gen in zip(ready, gens, strict=True):
            text = tok.decode(gen.token_ids, skip_special_tokens=True)
            ep.tokens.add_turn(list(gen.token_ids), list(gen.logprobs), gen.finish_reason, text)
            texts.append(text)

        def step(i: int):
            env = ready[i].env
            assert env is not None  # episodes without an env never get here
            try:
                return env.step(texts[i]), None
            except Exception as e:
                return None, e

        results = (
            list(pool.map(step, range(len(ready))))
            if pool
            else [step(i) for i in range(len(ready))]
        )
        still: list[_Episode] = []
        for ep, text, gen, (res, err) in zip(ready, texts, gens, results, strict=True):
            if err is not None:
                ep.traj.turns.append(
                    Turn(action=text, observation=[], reward=0.0, finish_reason=gen.finish_reason)
                )
                _fail(ep.traj, err)
                finish(ep)
                continue
            obs, reward, terminated, truncated, info = res
            comps = dict(info.get("reward_components", {})) if isinstance(info, dict) else {}
            ep.traj.turns.append(
                Turn(
                    action=text,
                    observation=list(obs),
                    reward=float(reward),
                    reward_components={k: float(v) for k, v in comps.items()},
                    terminated=bool(terminated),
                    truncated=bool(truncated),
                    info=_jsonable_info(info),
                    finish_reason=gen.finish_reason,
                )
            )
            if isinstance(info, dict) and "outcome" in info:
                ep.traj.outcome = float(info["outcome"])
                ep.traj.success = bool(info.get("success", False))
            if terminated or truncated:
                ep.traj.status = "done" if terminated else "truncated"
                if truncated:
                    ep.traj.metadata["truncated_by"] = "max_turns"
                finish(ep)
                continue
            try:
                ep.tokens.add_observation(list(obs))
            except Exception as e:
                _fail(ep.traj, e)
                finish(ep)
                continue
            still.append(ep)
        return still


def _fail(traj: Trajectory, e: BaseException) -> None:
    traj.status = "infra_error" if isinstance(e, InfraError) else "env_error"
    traj.error = _error_text(e)
    if traj.status == "infra_error":
        traj.outcome, traj.success = None, None


# Kept elsewhere in the trajectory, or bulky and the same for every episode.
_SKIP_INFO = {"reward_components", "episode", "TimeLimit.truncated", "tool_schemas"}


def _jsonable_info(info: Any) -> dict[str, Any]:
    from agentgym.trajectory import _json_safe

    if not isinstance(info, dict):
        return {}
    return _json_safe({k: v for k, v in info.items() if k not in _SKIP_INFO})


def _open_out(out: str | Path | IO[str] | None) -> tuple[IO[str] | None, bool]:
    if out is None:
        return None, False
    if hasattr(out, "write"):
        return out, False  # type: ignore[return-value]
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p.open("w", encoding="utf-8"), True


def collect(
    policy: Policy,
    env_id: str,
    seeds: Sequence[int],
    *,
    out: str | Path | None = None,
    options: dict[str, Any] | None = None,
    **config: Any,
) -> list[Trajectory]:
    """One-call rollout: ``collect(policy, "agentgym/Wordle-v0", range(8), group_size=4)``.

    Keyword arguments are :class:`CollectConfig` fields; unknown ones raise.
    """
    known = set(CollectConfig.__dataclass_fields__)
    unknown = set(config) - known
    if unknown:
        raise ConfigError(f"unknown collect option(s) {sorted(unknown)}; valid: {sorted(known)}")
    return Collector(policy, CollectConfig(**config)).collect(env_id, seeds, options, out)
