"""The learning check: GRPO on a tiny locally built model, from 0 to solved in a minute.

1. Build a tiny Llama and a tokenizer (trained on the env's own text, action
   words as single tokens): no download.
2. Warm start (supervised) on *random valid actions*: this teaches only the
   action format, no task knowledge.
3. Evaluate greedily on held-out seeds ("before").
4. GRPO with the shipped collector, estimator and trainer.
5. Evaluate again ("after").

Run it as ``python bench/learning.py`` (its last line reads
``success_before=X success_after=Y steps=N seconds=S``; ``--quick`` is the smaller
version the tests run); ``agentgym demo`` runs it after the default model's rollout.

Example:
    >>> from agentgym.recipes.learning import LearningConfig, run
    >>> run(LearningConfig(eval_seeds=8))["success_after"]  # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LearningConfig", "QUICK", "run"]


@dataclass
class LearningConfig:
    """One learning run: env, tiny model, warm start, GRPO, evaluation."""

    env_id: str = "agentgym/FrozenLake-v0"
    """A toy-text env whose actions are words."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"desc": ["SFF", "FHF", "FFG"]})
    """A 3x3 lake with a hole in the middle: no state-blind policy solves it greedily
    (always "right" ends against the wall, alternating falls in), so "after" needs the
    policy to read the map. Plain outcome reward plus the env's format penalty."""
    max_turns: int = 8
    """Turn limit per episode."""
    history: int = 0
    """Prompt = system prompt + the newest observation (the map shows where the agent is)."""
    hidden_size: int = 64
    """Width of the tiny Llama."""
    num_layers: int = 2
    """Layers of the tiny Llama."""
    warm_episodes: int = 64
    """Episodes of random valid actions for the supervised warm start (format only)."""
    warm_epochs: int = 30
    """Passes over the warm-start episodes."""
    warm_lr: float = 3e-3
    """Learning rate of the warm start."""
    grpo_steps: int = 30
    """GRPO steps."""
    tasks_per_step: int = 8
    """Tasks (seeds) per GRPO step."""
    group_size: int = 8
    """Samples per task (G)."""
    lr: float = 1e-3
    """GRPO learning rate."""
    lr_warmup_steps: int = 0
    """Linear learning-rate warm-up, in optimizer steps."""
    epochs: int = 4
    """PPO epochs per batch."""
    temperature: float = 1.0
    """Sampling temperature during training."""
    estimator: str = "grpo"
    """Advantage estimator."""
    eval_seeds: int = 32
    """Held-out seeds evaluated greedily before and after."""
    seed: int = 0
    """Seed of the model, the warm start, task selection and sampling."""
    out_dir: str = ""
    """Where the model, metrics and rollouts go (a new temporary folder when empty)."""


QUICK: dict[str, Any] = {"eval_seeds": 8}  # the smaller version run by the tests


def _env_corpus(cfg: LearningConfig, seeds: range) -> tuple[list[str], list[str]]:
    """Texts the env produces (for the tokenizer) and its action words."""
    import agentgym
    from agentgym.envs.toytext import ToyText
    from agentgym.errors import ConfigError

    texts: list[str] = []
    max_turns = cfg.max_turns
    env = agentgym.make(cfg.env_id, max_turns=max_turns, **cfg.env_kwargs)
    if not isinstance(env.unwrapped, ToyText):
        raise ConfigError(
            f"the learning check needs a toy-text env (FrozenLake, Taxi, CliffWalking, "
            f"Blackjack) whose actions are words; {cfg.env_id!r} is "
            f"{type(env.unwrapped).__name__}"
        )
    words = list(env.unwrapped.action_words)
    rng = np.random.default_rng(0)
    for s in seeds:
        obs, _ = env.reset(seed=s)
        texts += [m["content"] for m in obs]
        for _ in range(max_turns):
            obs, _, term, trunc, _ = env.step(str(rng.choice(words + ["jump"])))
            texts += [m["content"] for m in obs]
            if term or trunc:
                break
    return texts, words


def _collect_config(cfg: LearningConfig) -> Any:
    """Collection settings shared by the warm start, the GRPO steps and evaluation."""
    from agentgym.policies.base import SamplingParams
    from agentgym.rollout import CollectConfig

    return CollectConfig(
        group_size=cfg.group_size,
        max_turns=cfg.max_turns,
        max_episode_tokens=2048,
        env_kwargs=cfg.env_kwargs,
        history=cfg.history,
        sampling=SamplingParams(temperature=cfg.temperature, max_new_tokens=4),
        progress=False,
    )


def _warm_start(policy: Any, cfg: LearningConfig, words: list[str]) -> None:
    """Supervised steps on random valid actions (format only)."""
    from agentgym.policies.scripted import RandomChoicePolicy
    from agentgym.rl import TrainConfig, Trainer
    from agentgym.rollout import Collector

    demo = RandomChoicePolicy(words, policy.tokenizer, seed=cfg.seed)
    seeds = list(range(10_000, 10_000 + cfg.warm_episodes))
    collect_cfg = replace(_collect_config(cfg), group_size=1)
    trajs = Collector(demo, collect_cfg).collect(cfg.env_id, seeds)
    sft = Trainer(policy.model, TrainConfig(loss="reinforce", lr=cfg.warm_lr, micro_batch_size=64))
    ones = np.ones(len(trajs))
    for _ in range(cfg.warm_epochs):
        sft.update(trajs, ones)  # advantage 1 everywhere: plain negative log-likelihood


def run(cfg: LearningConfig, progress: bool = True) -> dict[str, float]:
    """Build, warm-start, evaluate, train with GRPO, evaluate; return the figures.

    Keys: ``success_before``, ``success_after`` (greedy, on ``cfg.eval_seeds`` held-out
    seeds), ``steps``, ``seconds``, ``train_success_last`` (sampled, last GRPO step).
    The model, metrics and rollouts go to ``cfg.out_dir`` (a new temporary directory
    when empty). Torch's global RNG is seeded from ``cfg.seed`` for the run and
    restored afterwards.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _run(cfg, progress)


def _run(cfg: LearningConfig, progress: bool) -> dict[str, float]:
    from agentgym.policies.hf import HFPolicy
    from agentgym.policies.tinymodels import build_tiny_chat_model
    from agentgym.rl import TrainConfig, train
    from agentgym.rollout import evaluate

    start = time.perf_counter()
    out = Path(cfg.out_dir or tempfile.mkdtemp(prefix="agentgym-learning-"))
    texts, words = _env_corpus(cfg, range(200, 232))
    model_dir = build_tiny_chat_model(
        out / "model",
        words=words,
        corpus=texts,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        seed=cfg.seed,
    )
    policy = HFPolicy.from_pretrained(str(model_dir), device="cpu")
    _warm_start(policy, cfg, words)
    eval_seeds = list(range(1_000_000, 1_000_000 + cfg.eval_seeds))
    collect_cfg = _collect_config(cfg)
    before = evaluate(policy, cfg.env_id, eval_seeds, collect_cfg)["success_rate"]
    tcfg = TrainConfig(
        env_id=cfg.env_id,
        steps=cfg.grpo_steps,
        tasks_per_step=cfg.tasks_per_step,
        collect=collect_cfg,
        estimator=cfg.estimator,
        lr=cfg.lr,
        epochs=cfg.epochs,
        lr_warmup_steps=cfg.lr_warmup_steps,
        micro_batch_size=64,
        seed=cfg.seed,
        out_dir=str(out / "grpo"),
        save_model=False,
    )
    result = train(tcfg, policy=policy, progress=progress)
    after = evaluate(policy, cfg.env_id, eval_seeds, collect_cfg)["success_rate"]
    return {
        "success_before": before,
        "success_after": after,
        "steps": cfg.grpo_steps,
        "seconds": time.perf_counter() - start,
        "train_success_last": result.history[-1]["reward/success_rate"],
    }
