"""The training loop: collect, advantages, update, sync, log.

It reads top to bottom (see :func:`train`)::

    collect -> compute_advantages -> Trainer.update -> policy refreshed
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agentgym.rl.advantages import compute_advantages
from agentgym.rl.config import TrainConfig
from agentgym.rl.trainer import Trainer
from agentgym.rollout.collector import Collector
from agentgym.rollout.metrics import evaluate, rollout_metrics

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    """What a run produced: per-step metrics and held-out success before/after."""

    history: list[dict[str, float]]
    success_before: float | None
    success_after: float | None
    out_dir: Path


def train(
    config: TrainConfig,
    policy: Any | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run the on-policy loop; metrics also go to ``out_dir/metrics.jsonl``.

    Args:
        config: the run's configuration.
        policy: an HF policy to train in place (default: loaded from ``config.model``).
        on_step: called with (step, metrics) after each update.
        progress: show progress bars.
    """
    from tqdm.auto import tqdm

    from agentgym.policies import load_policy

    cfg = config
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    policy = policy or load_policy(cfg.model, cfg.device)
    trainer = Trainer(policy.model, cfg)
    collect_cfg = replace(cfg.collect, progress=False)
    if collect_cfg.sampling.seed is None:  # the run's seed also seeds the sampler
        collect_cfg = replace(collect_cfg, sampling=replace(collect_cfg.sampling, seed=cfg.seed))
    collector = Collector(policy, collect_cfg)
    eval_seeds = list(range(cfg.eval_seed_offset, cfg.eval_seed_offset + cfg.eval_seeds))
    history: list[dict[str, float]] = []
    before = after = None
    with (out / "metrics.jsonl").open("w") as log:
        if eval_seeds:
            before = evaluate(policy, cfg.env_id, eval_seeds, collect_cfg)["success_rate"]
            log.write(json.dumps({"step": 0, "eval/success_rate": before}) + "\n")
        for step in tqdm(range(cfg.steps), desc="train", disable=not progress):
            t0 = time.perf_counter()
            seeds = [
                cfg.seed * 1_000_003 + step * cfg.tasks_per_step + i
                for i in range(cfg.tasks_per_step)
            ]
            trajs = collector.collect(
                cfg.env_id, seeds, out=out / "rollouts" / f"step{step:05d}.jsonl"
            )
            adv, stats = compute_advantages(cfg.estimator, trajs, cfg.reward)
            metrics = {"step": float(step + 1)}
            metrics |= rollout_metrics(trajs)
            metrics["rollout/zero_signal_groups"] = float(stats.zero_signal_groups)
            metrics["rollout/zero_signal_fraction"] = stats.zero_signal_fraction
            metrics |= trainer.update(trajs, adv)
            if hasattr(policy, "load_weights"):  # backends holding their own copy (vLLM)
                policy.load_weights(policy.model)
            metrics["perf/step_seconds"] = time.perf_counter() - t0
            log.write(json.dumps(metrics) + "\n")
            log.flush()
            history.append(metrics)
            if on_step is not None:
                on_step(step, metrics)
        if eval_seeds:
            after = evaluate(policy, cfg.env_id, eval_seeds, collect_cfg)["success_rate"]
            log.write(json.dumps({"step": cfg.steps, "eval/success_rate": after}) + "\n")
    if cfg.save_model:
        policy.model.save_pretrained(out / "model")
        policy.tokenizer.save_pretrained(out / "model")
    return TrainResult(history, before, after, out)
