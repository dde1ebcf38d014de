"""The proof that it learns: GRPO on a tiny locally built model.

1. Build a tiny Llama and a tokenizer (trained on the env's own text, action
   words as single tokens): no download.
2. Warm start (supervised) on *random valid actions*: this teaches only the
   action format, no task knowledge.
3. Evaluate greedily on held-out seeds ("before").
4. GRPO with the shipped collector, estimator and trainer.
5. Evaluate again ("after").

The last line reads ``success_before=X success_after=Y steps=N seconds=S``.
Run: ``python bench/learning.py`` (``--quick`` is the smaller version the tests run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class LearningConfig:
    env_id: str = "agentgym/FrozenLake-v0"
    # A 3x3 lake with a hole in the middle. No state-blind policy solves it greedily
    # (always "right" ends against the wall, alternating falls in), so "after" needs
    # the learned policy to read the map. Plain outcome reward: 1 at the goal, plus the
    # env's format penalty for text that is not an action.
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"desc": ["SFF", "FHF", "FFG"]})
    max_turns: int = 8
    # Prompt = system prompt + the newest observation (the map shows where the agent is).
    history: int = 0
    hidden_size: int = 64
    num_layers: int = 2
    warm_episodes: int = 64
    warm_epochs: int = 30
    warm_lr: float = 3e-3
    grpo_steps: int = 30
    tasks_per_step: int = 8
    group_size: int = 8
    lr: float = 1e-3
    lr_warmup_steps: int = 0
    epochs: int = 4
    temperature: float = 1.0
    estimator: str = "grpo"
    eval_seeds: int = 32
    seed: int = 0
    out_dir: str = ""


QUICK = {"eval_seeds": 8}


def env_corpus(cfg: LearningConfig, seeds: range) -> tuple[list[str], list[str]]:
    """Texts the env produces (for the tokenizer) and its action words."""
    import agentgym

    texts: list[str] = []
    max_turns = cfg.max_turns
    env = agentgym.make(cfg.env_id, max_turns=max_turns, **cfg.env_kwargs)
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


def warm_start(policy, cfg: LearningConfig, words: list[str]) -> None:
    """Supervised steps on random valid actions (format only)."""
    from agentgym.collect import CollectConfig, Collector
    from agentgym.policies.scripted import RandomChoicePolicy
    from agentgym.train import TrainConfig, Trainer

    demo = RandomChoicePolicy(words, policy.tokenizer, seed=cfg.seed)
    seeds = list(range(10_000, 10_000 + cfg.warm_episodes))
    collect_cfg = CollectConfig(
        max_turns=cfg.max_turns, env_kwargs=cfg.env_kwargs, history=cfg.history, progress=False
    )
    trajs = Collector(demo, collect_cfg).collect(cfg.env_id, seeds)
    sft = Trainer(policy.model, TrainConfig(loss="reinforce", lr=cfg.warm_lr, micro_batch_size=64))
    ones = np.ones(len(trajs))
    for _ in range(cfg.warm_epochs):
        sft.update(trajs, ones)  # advantage 1 everywhere: plain negative log-likelihood


def run(cfg: LearningConfig, progress: bool = True) -> dict[str, float]:
    """Build, warm-start, evaluate, train with GRPO, evaluate; return the figures."""
    import torch

    from agentgym.policies.hf import HFPolicy
    from agentgym.tinymodels import build_tiny_chat_model
    from agentgym.train import TrainConfig, evaluate, train

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)  # the benchmark owns its process; tests use --quick in a subprocess
    out = Path(cfg.out_dir or tempfile.mkdtemp(prefix="agentgym-learning-"))
    texts, words = env_corpus(cfg, range(200, 232))
    model_dir = build_tiny_chat_model(
        out / "model",
        words=words,
        corpus=texts,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        seed=cfg.seed,
    )
    policy = HFPolicy.from_pretrained(str(model_dir), device="cpu")
    warm_start(policy, cfg, words)
    eval_seeds = list(range(1_000_000, 1_000_000 + cfg.eval_seeds))
    kw: dict[str, Any] = dict(
        max_turns=cfg.max_turns, max_new_tokens=4, env_kwargs=cfg.env_kwargs, history=cfg.history
    )
    before = evaluate(policy, cfg.env_id, eval_seeds, **kw)["success_rate"]
    tcfg = TrainConfig(
        env_id=cfg.env_id,
        env_kwargs=cfg.env_kwargs,
        steps=cfg.grpo_steps,
        tasks_per_step=cfg.tasks_per_step,
        group_size=cfg.group_size,
        estimator=cfg.estimator,
        lr=cfg.lr,
        epochs=cfg.epochs,
        lr_warmup_steps=cfg.lr_warmup_steps,
        temperature=cfg.temperature,
        max_new_tokens=4,
        max_turns=cfg.max_turns,
        history=cfg.history,
        micro_batch_size=64,
        seed=cfg.seed,
        out_dir=str(out / "grpo"),
        save_model=False,
    )
    result = train(tcfg, policy=policy, progress=progress)
    after = evaluate(policy, cfg.env_id, eval_seeds, **kw)["success_rate"]
    return {
        "success_before": before,
        "success_after": after,
        "steps": cfg.grpo_steps,
        "seconds": time.perf_counter() - start,
        "train_success_last": result.history[-1]["reward/success_rate"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="the smaller version run by the tests")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for f in dataclasses.fields(LearningConfig):
        as_json = isinstance(f.default, bool) or f.name == "env_kwargs"
        conv = json.loads if as_json else type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=conv, default=None)
    args = p.parse_args(argv)
    values = dict(QUICK) if args.quick else {}
    values |= {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(LearningConfig)
        if getattr(args, f.name) is not None
    }
    res = run(LearningConfig(**values), progress=not args.no_progress)
    sys.stdout.write(
        f"success_before={res['success_before']:.3f} success_after={res['success_after']:.3f} "
        f"steps={res['steps']} seconds={res['seconds']:.1f}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
