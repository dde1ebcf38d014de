"""The Collector: drives a policy through environments, token-exact, episodes apart.

N tasks (seeds) x G samples each: the G copies of a task are reset with the same
seed and options and share a ``group_id``. Episodes advance independently: one goes
back to the policy as soon as its env step returns, and its next env step goes to a
worker as soon as its turn is sampled; nothing waits for the slowest episode.

- **Env steps** run on an :class:`~agentgym.rollout.workers.EnvRunner`: threads
  (default), processes (CPU-heavy envs) or Ray actors (``env_backend``).
- **Generation** is continuously batched. An in-process backend (HF, vLLM, scripted)
  gets one batch of every request waiting whenever it is free; a backend that takes
  requests as they come (an HTTP server: ``max_concurrency`` attribute) gets each
  request on its own, up to ``concurrent_requests`` in flight.
- **Timeouts**: an env operation past ``env_step_timeout_s`` ends its episode as
  ``env_error`` and its worker is replaced; a turn of generation past
  ``generation_timeout_s`` ends its episodes as ``infra_error`` (the policy backend is
  at fault); an episode past ``episode_timeout_s`` ends as whichever of the two it was
  waiting on. The reason is recorded in ``Trajectory.error``; the run goes on.
- **Retries**: an episode that ends in ``infra_error`` is run again from the same seed,
  up to ``max_retries`` times; ``metadata["retries"]`` lists the failed attempts.
- **Never lose work**: each trajectory is appended to ``out`` (one JSON line) and
  flushed the moment it ends; ``resume=True`` keeps what the file holds and runs only
  the missing (task, sample) pairs (see :mod:`agentgym.rollout.store`).
- **Reproducible**: each turn's sampler seed comes from (sampling seed, task, env
  seed, sample, turn), never from the order in which episodes reach the policy.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import queue
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agentgym.errors import ConfigError, InfraError
from agentgym.policies.base import Policy, Request, SamplingParams
from agentgym.rollout.episode import Episode, turn_seed
from agentgym.rollout.render import ChatRenderer
from agentgym.rollout.store import TrajectoryFile, trajectory_key
from agentgym.rollout.workers import EnvRunner, EnvSpec, ThreadWorkers, make_env_runner
from agentgym.trajectory import Trajectory

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
    env_backend: str = "thread"
    """Where env steps run: 'thread' (this process), 'process' (spawned worker
    processes: CPU-heavy envs; env_factory must be picklable) or 'ray' (Ray actors)."""
    env_workers: int = 8
    """Env workers (threads, processes or actors) stepping envs in parallel."""
    max_live_episodes: int | None = None
    """Episodes in progress at once (None: all); new ones start as others end."""
    concurrent_requests: int | None = None
    """Generation requests in flight at once, each its own policy call (for servers that
    batch across calls). 0: one loop hands the policy a batch of every waiting request
    (in-process backends). None: the policy's max_concurrency attribute if it has one
    (the OpenAI backend), else 0."""
    batch_window_s: float = 0.002
    """In-process backends: while env steps are still running, a batch goes to the policy
    once no new request came for this long (at most 25 times this after its first), so
    fast envs share one batch per turn and a slow one delays the others only briefly."""
    env_step_timeout_s: float = 300.0
    """Limit on one env reset, step or close; past it the episode ends as env_error and
    the worker is replaced."""
    generation_timeout_s: float = 600.0
    """Limit on one policy call (a turn of a batch of episodes); past it those episodes
    end as infra_error."""
    episode_timeout_s: float = 3600.0
    """Limit on one episode attempt, start to end."""
    max_retries: int = 2
    """Times an episode that ended in infra_error is run again from the same seed."""
    fsync_every: int = 32
    """fsync the output file after this many trajectories (each is flushed at once)."""
    ray_address: str | None = None
    """Ray cluster for env_backend='ray' ('auto', 'ray://HOST:10001'); None starts or
    joins a local one (ray.init's default)."""
    ray_env_cpus: float = 1.0
    """CPUs each Ray env actor reserves on its node."""
    progress: bool = True
    """Show a progress bar (tqdm) over episodes."""

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(what)

        need(self.group_size >= 1, f"group_size must be >= 1, got {self.group_size}")
        need(
            self.max_turns is None or self.max_turns >= 1,
            f"max_turns must be >= 1 or None, got {self.max_turns}",
        )
        need(
            self.max_episode_tokens >= 2,
            f"max_episode_tokens must be >= 2, got {self.max_episode_tokens}",
        )
        need(
            self.history is None or self.history >= 0,
            f"history must be >= 0 or None, got {self.history}",
        )
        need(self.env_workers >= 1, f"env_workers must be >= 1, got {self.env_workers}")
        need(
            self.env_backend in ("thread", "process", "ray"),
            f"env_backend must be 'thread', 'process' or 'ray', got {self.env_backend!r}",
        )
        need(
            self.max_live_episodes is None or self.max_live_episodes >= 1,
            f"max_live_episodes must be >= 1 or None, got {self.max_live_episodes}",
        )
        need(
            self.concurrent_requests is None or self.concurrent_requests >= 0,
            f"concurrent_requests must be >= 0 or None, got {self.concurrent_requests}",
        )
        need(self.batch_window_s >= 0, f"batch_window_s must be >= 0, got {self.batch_window_s}")
        for name in ("env_step_timeout_s", "generation_timeout_s", "episode_timeout_s"):
            need(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        need(self.max_retries >= 0, f"max_retries must be >= 0, got {self.max_retries}")
        need(self.fsync_every >= 1, f"fsync_every must be >= 1, got {self.fsync_every}")


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

    Worker processes and Ray actors (``env_backend``) are started on the first
    ``collect`` and kept for the next ones (a training loop collects every step);
    :meth:`close` (or ``with Collector(...) as c:``) stops them.
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
        self._runner: EnvRunner | None = None

    def close(self) -> None:
        """Stop the env worker processes or actors kept between calls (if any)."""
        if self._runner is not None:
            self._runner.shutdown()
            self._runner = None

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _env_runner(self, post: Any) -> EnvRunner:
        cfg = self.config
        if cfg.env_backend == "thread":  # threads are cheap: fresh ones per call
            return make_env_runner("thread", cfg.env_workers, post)
        if self._runner is None:
            extra: dict[str, Any] = {}
            if cfg.env_backend == "ray":
                extra = {"address": cfg.ray_address, "num_cpus": cfg.ray_env_cpus}
            self._runner = make_env_runner(cfg.env_backend, cfg.env_workers, post, **extra)
        self._runner.post = post
        return self._runner

    def _release(self, runner: EnvRunner, clean: bool) -> None:
        if runner is not self._runner:
            runner.shutdown()
        elif not clean:  # envs may still be open in the workers: start afresh next time
            self.close()

    def collect(
        self,
        env_id: str,
        seeds: Sequence[int],
        options: dict[str, Any] | None = None,
        out: str | Path | IO[str] | None = None,
        env_factory: Callable[[], Any] | None = None,
        *,
        resume: bool = False,
    ) -> list[Trajectory]:
        """Roll out ``len(seeds) * group_size`` episodes; return their trajectories.

        Args:
            env_id: a registered id (also recorded on each trajectory).
            seeds: one task per seed.
            options: ``reset`` options shared by all tasks.
            out: JSONL path or open file; each trajectory is appended the moment it ends.
            env_factory: build envs with this instead of ``make(env_id)``.
            resume: keep the trajectories ``out`` already holds and collect only the
                missing (task, sample) pairs (a torn last line is dropped with a warning).

        Returns:
            The trajectories (those read back from ``out`` included) in task-then-sample
            order.
        """
        cfg = self.config
        writer = TrajectoryFile(out, resume, cfg.fsync_every) if out is not None else None
        if resume and writer is None:
            raise ConfigError("resume=True needs out=PATH (the file to resume)")
        kwargs = dict(cfg.env_kwargs)
        if cfg.max_turns is not None:
            kwargs["max_turns"] = cfg.max_turns
        spec = EnvSpec(env_id, kwargs, env_factory)
        wanted = {
            (env_id, i, int(s), g): (i, int(s), g)
            for i, s in enumerate(seeds)
            for g in range(cfg.group_size)
        }
        kept: dict[Any, Trajectory] = {}
        for t in writer.existing if writer else []:
            k = trajectory_key(t)
            if k in wanted and k not in kept:
                kept[k] = t
        todo = [v for k, v in wanted.items() if k not in kept]
        run = _Run(self, env_id, spec, options, writer, len(wanted), len(kept))
        try:
            done = run.run(todo)
        finally:
            if writer is not None:
                writer.close()
        trajs = list(kept.values()) + done
        # Finishing order depends on episode length; return in task-then-sample order.
        return sorted(trajs, key=lambda t: (t.metadata["task_index"], t.sample_index))


_TICKETS = itertools.count(1)


class _Run:
    """One ``collect`` call: the event loop that moves every episode along."""

    def __init__(
        self,
        owner: Collector,
        env_id: str,
        spec: EnvSpec,
        options: dict[str, Any] | None,
        writer: TrajectoryFile | None,
        total: int,
        already: int,
    ) -> None:
        from tqdm.auto import tqdm

        self.owner = owner
        self.cfg = cfg = owner.config
        self.policy = owner.policy
        self.renderer = owner.renderer
        self.env_id, self.spec, self.options, self.writer = env_id, spec, options, writer
        self.events: queue.SimpleQueue[tuple[int, Any, BaseException | None]] = queue.SimpleQueue()
        self.tickets = _TICKETS  # unique across calls: a late answer never matches a new one
        self.waiting: dict[int, Any] = {}  # ticket -> episode (env op) or list (generation)
        # (when, seq, ticket, episode, attempt): an operation's or an episode's deadline,
        # dropped lazily once the operation is answered or the attempt is over
        self.deadlines: list[tuple[float, int, int, Episode | None, int]] = []
        self.seq = itertools.count()
        self.gen_queue: deque[tuple[Episode, int]] = deque()
        self.queued_at = self.last_at = 0.0  # arrival of the oldest and newest request
        self.wake_at: float | None = None  # a batch waiting for its window to close
        self.done: list[Trajectory] = []
        concurrent = cfg.concurrent_requests
        if concurrent is None:
            concurrent = int(getattr(self.policy, "max_concurrency", 0) or 0)
        self.gen_slots = max(1, concurrent)
        self.one_per_call = concurrent > 0
        self.bar = tqdm(
            total=total, initial=already, desc=f"rollout {env_id}", unit="ep",
            disable=not cfg.progress,
        )  # fmt: skip

    def post(self, ticket: int, value: Any, error: BaseException | None) -> None:
        self.events.put((ticket, value, error))

    # ---------------------------------------------------------------------- loop
    def run(self, todo: list[tuple[int, int, int]]) -> list[Trajectory]:
        cfg = self.cfg
        self.runner = self.owner._env_runner(self.post)
        self.gen = ThreadWorkers(self.gen_slots, "agentgym-generate", self.post)
        self.gen_busy = 0
        pending = deque(
            Episode.new(self.env_id, i, s, g, self.options, self.renderer, cfg.history)
            for i, s, g in todo
        )
        live = 0
        limit = cfg.max_live_episodes or len(pending) or 1
        clean = False
        try:
            while pending or live:
                while pending and live < limit:
                    self._launch(pending.popleft())
                    live += 1
                self._dispatch()
                live -= self._wait()
            clean = True
        finally:
            self.bar.close()
            self.gen.shutdown()
            self.owner._release(self.runner, clean)
        return self.done

    def _wait(self) -> int:
        """Handle one event (or the deadlines that passed); returns episodes finished."""
        before = len(self.done)
        while self.deadlines and self._stale(self.deadlines[0]):
            heapq.heappop(self.deadlines)
        timeout = None
        if self.deadlines:
            timeout = max(0.0, self.deadlines[0][0] - time.monotonic())
        if self.wake_at is not None:
            wake = max(0.0, self.wake_at - time.monotonic())
            timeout = wake if timeout is None else min(timeout, wake)
        try:
            ticket, value, error = self.events.get(timeout=timeout)
        except queue.Empty:
            self._expire(time.monotonic())
        else:
            self._handle(ticket, value, error)
            while True:  # drain what else is ready before dispatching again
                try:
                    ticket, value, error = self.events.get_nowait()
                except queue.Empty:
                    break
                self._handle(ticket, value, error)
        return len(self.done) - before

    def _stale(self, entry: tuple[float, int, int, Episode | None, int]) -> bool:
        _, _, ticket, ep, attempt = entry
        if ep is None:
            return ticket not in self.waiting
        return ep.attempt != attempt or ep.state == "done"

    def _ticket(self, what: Any, limit_s: float) -> int:
        ticket = next(self.tickets)
        self.waiting[ticket] = what
        when = time.monotonic() + limit_s
        heapq.heappush(self.deadlines, (when, next(self.seq), ticket, None, 0))
        return ticket

    def _env_ticket(self, ep: Episode, state: str) -> int:
        limit = min(self.cfg.env_step_timeout_s, max(0.0, ep.deadline - time.monotonic()))
        ep.state, ep.ticket = state, self._ticket(ep, limit)
        return ep.ticket

    def _handle(self, ticket: int, value: Any, error: BaseException | None) -> None:
        what = self.waiting.pop(ticket, None)
        if what is None:
            return  # abandoned after its deadline: the episode has moved on
        if isinstance(what, list):
            self.gen_busy -= 1
            self._on_generated(ticket, what, value, error)
            return
        ep: Episode = what
        if ep.state == "open":
            self._on_open(ep, value, error)
        elif ep.state == "step":
            self._on_step(ep, value, error)
        elif ep.state == "close":
            if error is not None:
                ep.traj.metadata["close_error"] = f"{type(error).__name__}: {error}"
            self._final(ep)

    def _expire(self, now: float) -> None:
        cfg = self.cfg
        while self.deadlines and self.deadlines[0][0] <= now:
            entry = heapq.heappop(self.deadlines)
            if self._stale(entry):
                continue
            _, _, ticket, owner, _ = entry
            if owner is not None:  # an episode's own limit, while it waits for the policy
                if owner.state == "gen":
                    why = f"the episode took more than {cfg.episode_timeout_s:g} s"
                    self._end(owner, InfraError(f"{why}; the policy backend did not answer"))
                continue
            what = self.waiting.pop(ticket)
            if isinstance(what, list):  # a policy call hung: its episodes are infra_error
                self.gen_busy -= 1
                self.gen.abandon(ticket)
                for ep in what:
                    if ep.state == "gen" and ep.ticket == ticket:
                        why = f"generation took more than {cfg.generation_timeout_s:g} s"
                        self._end(ep, InfraError(f"{why}; the policy backend did not answer"))
                continue
            ep = what
            since = self.runner.running_since(ticket, ep.key)
            limit = cfg.env_step_timeout_s
            if (since is None or since + limit > now) and ep.deadline > now:
                # it waited for a busy worker: its own limit counts from when it started
                self.waiting[ticket] = ep
                when = min((since or now) + limit, ep.deadline)
                heapq.heappush(self.deadlines, (when, next(self.seq), ticket, None, 0))
                continue
            self.runner.abandon(ticket, ep.key)
            ep.has_env = False
            if ep.state == "close":
                ep.traj.metadata["close_error"] = "env.close() timed out"
                self._final(ep)
                continue
            op = "reset" if ep.state == "open" else "step"
            why = (
                f"the episode took more than {cfg.episode_timeout_s:g} s"
                if ep.deadline <= now
                else f"env.{op} took more than {cfg.env_step_timeout_s:g} s"
            )
            error = TimeoutError(f"{why}; the env worker was replaced")
            if ep.state == "step":
                ep.step_failed(error)
                self._end(ep, None)
            else:
                self._end(ep, error)

    # ------------------------------------------------------------------ episodes
    def _launch(self, ep: Episode) -> None:
        ep.deadline = time.monotonic() + self.cfg.episode_timeout_s
        heapq.heappush(self.deadlines, (ep.deadline, next(self.seq), 0, ep, ep.attempt))
        ep.has_env = True
        self.runner.open(self._env_ticket(ep, "open"), ep.key, self.spec, ep.seed, self.options)

    def _on_open(self, ep: Episode, value: Any, error: BaseException | None) -> None:
        if error is not None:
            self._end(ep, error)
            return
        try:
            ep.started(*value)
        except Exception as e:
            self._end(ep, e)
            return
        self._want_generation(ep)

    def _want_generation(self, ep: Episode) -> None:
        budget = self.cfg.max_episode_tokens - len(ep.tokens.prompt_ids())
        if budget <= 0:
            ep.traj.status = "truncated"
            ep.traj.metadata["truncated_by"] = "token_budget"
            self._end(ep, None)
            return
        ep.state, ep.ticket = "gen", None
        ep.wants += 1
        self.last_at = time.monotonic()
        if not self.gen_queue:
            self.queued_at = self.last_at
        self.gen_queue.append((ep, ep.wants))

    def _request(self, ep: Episode) -> Request:
        prompt = ep.tokens.prompt_ids()
        s = self.cfg.sampling.seed
        return Request(
            prompt_ids=prompt,
            messages=ep.tokens.context(),
            max_new_tokens=self.cfg.max_episode_tokens - len(prompt),
            seed=turn_seed(s, ep.task_index, ep.seed, ep.sample, len(ep.traj.turns)),
            session_id=f"{ep.traj.group_id}:{ep.sample}",
        )

    def _dispatch(self) -> None:
        """Hand waiting requests to the policy: one batch of all, or one call each."""
        self.wake_at = None
        while self.gen_queue and self.gen_busy < self.gen_slots:
            if not self.one_per_call and self.cfg.batch_window_s > 0:
                stepping = len(self.waiting) - self.gen_busy  # env operations in flight
                w = self.cfg.batch_window_s
                close = min(self.last_at + w, self.queued_at + 25 * w)
                if stepping and time.monotonic() < close:
                    self.wake_at = close  # more requests are on their way: let them join
                    return
            take = 1 if self.one_per_call else len(self.gen_queue)
            batch = []
            for _ in range(take):
                ep, wants = self.gen_queue.popleft()
                if ep.state == "gen" and ep.ticket is None and ep.wants == wants:
                    batch.append(ep)  # else it ended (timed out) while it waited
            if not batch:
                continue
            requests = [self._request(ep) for ep in batch]
            ticket = self._ticket(batch, self.cfg.generation_timeout_s)
            for ep in batch:
                ep.ticket = ticket
            self.gen_busy += 1
            params = self.cfg.sampling
            self.gen.submit(ticket, functools.partial(self.policy.generate, requests, params))

    def _on_generated(
        self, ticket: int, batch: list[Episode], gens: Any, error: BaseException | None
    ) -> None:
        if error is None and (not isinstance(gens, list) or len(gens) != len(batch)):
            error = InfraError(f"policy.generate returned {gens!r:.80} for {len(batch)} requests")
        for i, ep in enumerate(batch):
            if ep.state != "gen" or ep.ticket != ticket:
                continue  # ended (its episode timed out) while the policy worked
            if error is not None:
                err = InfraError(f"policy.generate failed: {type(error).__name__}: {error}")
                self._end(ep, err)
                continue
            try:
                text = ep.sampled(gens[i], self.policy.tokenizer)
            except Exception as e:
                self._end(ep, e)
                continue
            self.runner.step(self._env_ticket(ep, "step"), ep.key, text)

    def _on_step(self, ep: Episode, value: Any, error: BaseException | None) -> None:
        if error is not None:
            ep.step_failed(error)
            self._end(ep, None)
            return
        try:
            ended = ep.stepped(value)
        except Exception as e:
            self._end(ep, e)
            return
        if ended:
            self._end(ep, None)
        else:
            self._want_generation(ep)

    def _end(self, ep: Episode, error: BaseException | None) -> None:
        """The episode is over: record ``error``, close its env, then write it."""
        if error is not None:
            ep.fail(error)
        if ep.has_env:
            ep.has_env = False
            self.runner.close_env(self._env_ticket(ep, "close"), ep.key)
        else:
            self._final(ep)

    def _final(self, ep: Episode) -> None:
        if ep.traj.status == "infra_error" and ep.attempt < self.cfg.max_retries:
            ep.restart(self.renderer, self.cfg.history)
            self._launch(ep)
            return
        ep.state, ep.ticket = "done", None
        traj = ep.seal()
        self.done.append(traj)
        if self.writer is not None:
            self.writer.write(traj)
        self.bar.update(1)


def collect(
    policy: Policy,
    env_id: str,
    seeds: Sequence[int],
    *,
    out: str | Path | None = None,
    options: dict[str, Any] | None = None,
    resume: bool = False,
    **config: Any,
) -> list[Trajectory]:
    """One-call rollout: ``collect(policy, "agentgym/Wordle-v0", range(8), group_size=4)``.

    Keyword arguments are :class:`CollectConfig` fields; unknown ones raise.
    """
    known = set(CollectConfig.__dataclass_fields__)
    unknown = set(config) - known
    if unknown:
        raise ConfigError(f"unknown collect option(s) {sorted(unknown)}; valid: {sorted(known)}")
    return Collector(policy, CollectConfig(**config)).collect(
        env_id, seeds, options, out, resume=resume
    )
