"""Collection speed, measured side by side in one run.

1. Overhead: the collector on a tiny locally built model, against pure batched generation
   of the same requests (one batch per turn, the same prompts and per-turn seeds, so the
   same sampled tokens) with the same policy: ``collector_overhead = T_collect / T_gen - 1``.
2. Env stepping: steps per second of the collector with a policy that costs nothing,
   against a raw ``gymnasium`` loop over the same envs, seeds and actions (``env_ratio``:
   how many times faster the raw loop steps).
3. One env made slow (a ``--slow-sleep-s`` sleep per step on ``--slow-fraction`` of the
   episodes): the collector's total time against the lockstep collector agentgym had
   before (its algorithm is kept below as the baseline; same policy and seeds, so the
   same sampled tokens). ``async_speedup = T_lockstep / T_async`` with the lockstep
   collector as it ran by default (``env_workers=1``: the training loop, the recipes and
   the CLI stepped envs one after the other); ``async_speedup_same_workers`` gives it the
   async collector's ``--env-workers`` threads. That second figure is bounded by the
   slow episodes' own path: lockstep pays ``G + sleep`` per turn (G: one generation
   batch), async at best ``max(G, sleep + g)`` (g: a small batch), so at most ~2x when
   generation and the sleep cost the same, and less when generation dominates.

It also prints the per-turn cost of rendering an observation to token ids (a new
observation, and one seen before: toy envs repeat theirs) next to an env step.

Run: ``.venv/bin/python bench/collect.py`` (``--help`` lists the knobs). The last line
reads ``collector_overhead=X async_speedup=Y``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import tyro

import agentgym
from agentgym.config import cli_registry
from agentgym.policies.base import Generation, Request, SamplingParams
from agentgym.rollout import CollectConfig, Collector
from agentgym.rollout.episode import turn_seed
from agentgym.rollout.render import ChatRenderer, EpisodeTokens


@dataclass
class Args:
    """Collector overhead, env-stepping throughput and the async speedup, in one run."""

    env_id: str = "agentgym/FrozenLake-v0"
    """A toy-text env (its action words become single tokens of the tiny model)."""
    tasks: int = 64
    """Episodes per measurement (one sample each)."""
    max_turns: int = 8
    """Turn limit per episode."""
    max_new_tokens: int = 4
    """Tokens per turn."""
    hidden_size: int = 64
    """Width of the tiny Llama."""
    num_layers: int = 2
    """Layers of the tiny Llama."""
    env_workers: int = 8
    """Env worker threads (the collector's and the lockstep baseline's)."""
    env_tasks: int = 256
    """Episodes of the env-stepping measurement."""
    slow_fraction: float = 0.1
    """Fraction of episodes whose env sleeps on every step."""
    slow_sleep_s: float = 0.05
    """That sleep."""
    repeats: int = 3
    """Each timing is the best of this many runs."""
    device: str = "cpu"
    """torch device of the tiny model."""
    seed: int = 0
    """Seed of the model, the sampler and the tasks."""


# ----------------------------------------------------------------------------- helpers
class Recording:
    """A policy that records every request it gets (for the pure-generation baseline)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.tokenizer = inner, inner.tokenizer
        self.requests: list[Request] = []

    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        self.requests += requests
        return self.inner.generate(requests, params)


class FreeChoice:
    """Answers a random action word from pre-encoded ids: a policy that costs nothing."""

    def __init__(self, words: list[str], tokenizer: Any, eot: int) -> None:
        import random

        self.tokenizer = tokenizer
        self.ids = [tokenizer(w, add_special_tokens=False)["input_ids"] + [eot] for w in words]
        self.random = random

    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        out = []
        for r in requests:
            ids = self.random.Random(r.seed).choice(self.ids)
            out.append(Generation(list(ids), [0.0] * len(ids), "stop"))
        return out


class SlowEnv:
    """Env factory: every ``1/fraction``-th env sleeps on each step."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], fraction: float, sleep_s: float):
        self.env_id, self.kwargs, self.sleep_s = env_id, kwargs, sleep_s
        self.every = max(1, round(1 / fraction)) if fraction > 0 else 0
        self.count = 0

    def __call__(self) -> Any:
        env = agentgym.make(self.env_id, **self.kwargs)
        self.count += 1
        if self.every and self.count % self.every == 1 % self.every:
            step, sleep_s = env.step, self.sleep_s

            def slow_step(action: str) -> Any:
                time.sleep(sleep_s)
                return step(action)

            env.step = slow_step
        return env


def best_of(n: int, fn: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


# ----------------------------------------------------------------------------- lockstep
def lockstep_collect(
    policy: Any, env_id: str, seeds: list[int], cfg: CollectConfig, factory: Any
) -> list[list[str]]:
    """The collector as it was before async episodes: every live episode advances in
    lockstep (one generation batch for all, then all env steps, then again). The same
    per-turn seeds as the async collector, so both do the same work; returns the actions.
    """
    renderer = ChatRenderer(policy.tokenizer)
    eps = []
    for i, s in enumerate(seeds):
        env = factory()
        obs, _ = env.reset(seed=s)
        tokens = EpisodeTokens(renderer, cfg.history)
        tokens.start(list(obs))
        eps.append({"i": i, "seed": s, "env": env, "tokens": tokens, "actions": []})
    live = list(eps)
    with ThreadPoolExecutor(cfg.env_workers) as pool:
        while live:
            requests = []
            for ep in live:
                prompt = ep["tokens"].prompt_ids()
                seed = turn_seed(cfg.sampling.seed, ep["i"], ep["seed"], 0, len(ep["actions"]))
                requests.append(
                    Request(
                        prompt_ids=prompt,
                        messages=ep["tokens"].context(),
                        max_new_tokens=cfg.max_episode_tokens - len(prompt),
                        seed=seed,
                    )
                )
            gens = policy.generate(requests, cfg.sampling)
            texts = []
            for ep, gen in zip(live, gens, strict=True):
                text = policy.tokenizer.decode(gen.token_ids, skip_special_tokens=True)
                ep["tokens"].add_turn(list(gen.token_ids), list(gen.logprobs), "stop", text)
                ep["actions"].append(text)
                texts.append(text)
            results = list(
                pool.map(lambda a: a[0]["env"].step(a[1]), zip(live, texts, strict=True))
            )
            still = []
            for ep, (obs, _r, term, trunc, _info) in zip(live, results, strict=True):
                if term or trunc:
                    continue
                ep["tokens"].add_observation(list(obs))
                still.append(ep)
            live = still
    return [ep["actions"] for ep in eps]


# ----------------------------------------------------------------------------- parts
def build(args: Args) -> tuple[Any, list[str], dict[str, Any]]:
    from agentgym.envs.toytext import ToyText
    from agentgym.policies.hf import HFPolicy
    from agentgym.policies.tinymodels import build_tiny_chat_model

    kwargs = {"max_turns": args.max_turns}
    env = agentgym.make(args.env_id, **kwargs)
    if not isinstance(env.unwrapped, ToyText):
        raise SystemExit(f"{args.env_id} is not a toy-text env; pick FrozenLake, Taxi, ...")
    words = list(env.unwrapped.action_words)
    corpus = []
    for s in range(16):
        obs, _ = env.reset(seed=s)
        corpus += [m["content"] for m in obs]
    path = build_tiny_chat_model(
        tempfile.mkdtemp(prefix="agentgym-bench-collect-"),
        words=words,
        corpus=corpus,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        seed=args.seed,
    )
    return HFPolicy.from_pretrained(str(path), device=args.device), words, kwargs


def overhead(args: Args, policy: Any, cfg: CollectConfig) -> float:
    seeds = list(range(args.tasks))
    rec = Recording(policy)
    t_collect, trajs = best_of(
        args.repeats, lambda: Collector(rec, cfg).collect(args.env_id, seeds)
    )
    last = rec.requests[-sum(len(t.turns) for t in trajs) :]  # the last repeat's requests
    turns: dict[str, int] = {}
    batches: list[list[Request]] = []
    for r in last:  # regroup per turn: the batches a perfect lockstep would form
        k = turns[r.session_id or ""] = turns.get(r.session_id or "", -1) + 1
        if k == len(batches):
            batches.append([])
        batches[k].append(r)
    t_gen, gens = best_of(args.repeats, lambda: [policy.generate(b, cfg.sampling) for b in batches])
    sampled = sum(len(g.token_ids) for batch in gens for g in batch)
    recorded = sum(sum(sum(x.loss_mask) for x in t.samples()) for t in trajs)
    print(
        f"overhead: collect {t_collect:.3f}s, pure batched generation {t_gen:.3f}s "
        f"({len(batches)} batches, {sampled} sampled tokens; the collector sampled "
        f"{recorded}) -> collector_overhead={t_collect / t_gen - 1:.3f}"
    )
    return t_collect / t_gen - 1


def env_stepping(args: Args, words: list[str], policy: Any, kwargs: dict[str, Any]) -> float:
    from agentgym.policies.base import end_of_turn_id

    free = FreeChoice(words, policy.tokenizer, end_of_turn_id(policy.tokenizer))
    cfg = CollectConfig(
        max_turns=args.max_turns,
        env_workers=args.env_workers,
        sampling=SamplingParams(seed=args.seed),
        progress=False,
    )
    seeds = list(range(args.env_tasks))
    t_collect, trajs = best_of(
        args.repeats, lambda: Collector(free, cfg).collect(args.env_id, seeds)
    )
    steps = sum(len(t.turns) for t in trajs)

    def raw() -> int:
        n = 0
        for t in trajs:
            env = agentgym.make(args.env_id, **kwargs)
            env.reset(seed=t.seed)
            for turn in t.turns:
                env.step(turn.action)
                n += 1
        return n

    t_raw, n = best_of(args.repeats, raw)
    assert n == steps
    ratio = (steps / t_raw) / (steps / t_collect)
    print(
        f"env stepping: collector {steps / t_collect:.0f} steps/s, raw gymnasium loop "
        f"{steps / t_raw:.0f} steps/s ({steps} steps) -> env_ratio={ratio:.2f}"
    )
    return ratio


def slow_env(args: Args, policy: Any, cfg: CollectConfig, kwargs: dict[str, Any]) -> float:
    seeds = list(range(args.tasks))

    def factory() -> SlowEnv:
        return SlowEnv(args.env_id, kwargs, args.slow_fraction, args.slow_sleep_s)

    t_async, trajs = best_of(
        args.repeats,
        lambda: Collector(policy, cfg).collect(args.env_id, seeds, env_factory=factory()),
    )
    t_lock, actions = best_of(
        args.repeats, lambda: lockstep_collect(policy, args.env_id, seeds, cfg, factory())
    )
    one = replace(cfg, env_workers=1)
    t_lock1, actions1 = best_of(
        args.repeats, lambda: lockstep_collect(policy, args.env_id, seeds, one, factory())
    )
    done = [[turn.action for turn in t.turns] for t in trajs]
    same = actions == done == actions1
    print(
        f"slow env ({args.slow_fraction:.0%} of episodes sleep {args.slow_sleep_s * 1000:.0f} ms "
        f"per step): async {t_async:.3f}s ({cfg.env_workers} env workers); lockstep "
        f"{t_lock1:.3f}s (1 env worker, its default), {t_lock:.3f}s ({cfg.env_workers} env "
        f"workers); same actions: {same} -> async_speedup_same_workers={t_lock / t_async:.2f}"
    )
    return t_lock1 / t_async


def render_cost(args: Args, policy: Any, kwargs: dict[str, Any]) -> None:
    import itertools

    env = agentgym.make(args.env_id, **kwargs)
    env.reset(seed=0)
    obs = list(env.step("right")[0])
    renderer = ChatRenderer(policy.tokenizer)
    count = itertools.count()

    def fresh() -> list[dict[str, Any]]:
        return [{**m, "content": f"{m['content']} ({next(count)})"} for m in obs]

    def per_call(fn: Any, n: int = 500) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n * 1e6

    def step() -> None:
        env.reset(seed=0)
        env.step("right")

    new = per_call(lambda: renderer.continuation_ids(fresh()))
    seen = per_call(lambda: renderer.continuation_ids(obs))
    reset_step = per_call(step)
    print(
        f"render per turn: new observation {new:.0f} us, seen before {seen:.0f} us; "
        f"env reset+step {reset_step:.0f} us"
    )


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv, description=__doc__, registry=cli_registry())
    policy, words, kwargs = build(args)
    cfg = CollectConfig(
        max_turns=args.max_turns,
        max_episode_tokens=2048,
        env_workers=args.env_workers,
        sampling=SamplingParams(
            temperature=1.0, max_new_tokens=args.max_new_tokens, seed=args.seed
        ),
        progress=False,
    )
    Collector(policy, replace(cfg)).collect(args.env_id, range(8))  # warm up
    over = overhead(args, policy, cfg)
    env_stepping(args, words, policy, kwargs)
    render_cost(args, policy, kwargs)
    speedup = slow_env(args, policy, cfg, kwargs)
    print(f"collector_overhead={over:.3f} async_speedup={speedup:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
