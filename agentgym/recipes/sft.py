"""Supervised fine-tuning on trajectories, and rejection-sampling fine-tuning (RFT).

Demonstrations are ordinary trajectories: a scripted or optimal policy (see
:mod:`agentgym.recipes.experts`), or the model itself sampling several attempts per
task of which only the successful ones are kept (rejection sampling). SFT then
maximises the likelihood of the demonstrated assistant tokens: the trainer's
``reinforce`` loss with advantage 1 on every sampled token is exactly the
negative log-likelihood, token-mean over the batch, on the same token ledgers
the collector records (no re-tokenisation).

Example:
    >>> from agentgym.policies.hf import HFPolicy
    >>> from agentgym.policies.tinymodels import build_tiny_chat_model
    >>> from agentgym.recipes.experts import expert_policy
    >>> from agentgym.rollout import CollectConfig
    >>> policy = HFPolicy.from_pretrained(build_tiny_chat_model("/tmp/tiny-sft"))
    >>> expert = expert_policy("agentgym/Lookup-v0", policy.tokenizer)
    >>> demos = demonstrations(expert, "agentgym/Lookup-v0", range(4),
    ...                        CollectConfig(progress=False))
    >>> len(demos), all(t.success for t in demos)
    (4, True)
    >>> losses = sft_update(policy.model, demos, epochs=2, lr=1e-3)
    >>> losses[1] < losses[0]
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentgym.errors import ConfigError
from agentgym.rollout import CollectConfig, Collector
from agentgym.trajectory import Trajectory

__all__ = ["SFTConfig", "demonstrations", "rejection_sample", "run_sft", "sft_update"]


def demonstrations(
    policy: Any,
    env_id: str,
    seeds: Sequence[int],
    collect: CollectConfig | None = None,
    *,
    samples: int = 1,
    only_success: bool = True,
) -> list[Trajectory]:
    """Roll ``policy`` out on ``seeds`` and keep the episodes worth imitating.

    Args:
        policy: any policy (scripted, expert, or the model itself).
        env_id: a registered env.
        seeds: one task per seed.
        collect: turn and token limits, env kwargs, history, sampling (its group size
            is replaced by ``samples``).
        samples: attempts per task.
        only_success: keep only successful episodes (rejection sampling).

    Returns:
        The kept trajectories, in task order.
    """
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    cfg = replace(collect or CollectConfig(progress=False), group_size=samples)
    trajs = Collector(policy, cfg).collect(env_id, list(seeds))
    return [t for t in trajs if t.scorable and (t.success or not only_success)]


def rejection_sample(
    policy: Any,
    env_id: str,
    seeds: Sequence[int],
    collect: CollectConfig | None = None,
    *,
    samples: int = 4,
    per_task: int = 1,
) -> list[Trajectory]:
    """Sample ``samples`` attempts per task and keep up to ``per_task`` successful ones.

    The kept episodes are the RFT training set: fine-tuning on them (see
    :func:`sft_update`) moves the policy toward what already works for it.
    """
    kept = demonstrations(policy, env_id, seeds, collect, samples=samples)
    out: list[Trajectory] = []
    taken: dict[str, int] = {}
    for t in kept:
        if taken.get(t.group_id, 0) < per_task:
            taken[t.group_id] = taken.get(t.group_id, 0) + 1
            out.append(t)
    return out


def sft_update(
    model: Any,
    trajs: Sequence[Trajectory],
    *,
    epochs: int = 1,
    lr: float = 1e-5,
    micro_batch_size: int = 16,
    max_grad_norm: float = 1.0,
    progress: bool = False,
) -> list[float]:
    """Fine-tune ``model`` in place on the assistant tokens of ``trajs``.

    One optimizer step per epoch over the whole set (token-mean negative
    log-likelihood, gradient accumulated over micro-batches).

    ``progress`` shows a progress bar over the epochs.

    Returns:
        The loss of each epoch (before its update).
    """
    from tqdm.auto import tqdm

    from agentgym.rl import TrainConfig, Trainer

    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if not trajs:
        raise ConfigError(
            "no demonstrations to fine-tune on (did every episode fail? keep failures "
            "with only_success=False, or sample more attempts per task)"
        )
    config = TrainConfig(
        loss="reinforce",
        lr=lr,
        micro_batch_size=micro_batch_size,
        max_grad_norm=max_grad_norm,
    )
    trainer = Trainer(model, config)
    ones = np.ones(len(trajs))  # advantage 1 everywhere: plain negative log-likelihood
    steps = tqdm(range(epochs), desc="sft", disable=not progress)
    return [trainer.update(trajs, ones)["loss/policy"] for _ in steps]


@dataclass
class SFTConfig:
    """An SFT or rejection-sampling fine-tuning run (``agentgym sft``)."""

    env_id: str = "agentgym/Lookup-v0"
    """Registered env whose tasks give the demonstrations."""
    model: str = "default"
    """Model path or hub-style name; ``default`` is the embedded SmolLM2-135M-Instruct."""
    source: Literal["expert", "self"] = "expert"
    """``expert``: the env's expert policy (:mod:`agentgym.recipes.experts`) demonstrates;
    ``self``: the model samples ``samples`` attempts per task and its successes are kept
    (rejection-sampling fine-tuning)."""
    tasks: int = 32
    """Training tasks (seeds 0 .. tasks-1)."""
    samples: int = 4
    """Attempts per task with ``source=self``."""
    epochs: int = 3
    """Passes over the demonstrations (one optimizer step each)."""
    lr: float = 1e-5
    """AdamW learning rate."""
    micro_batch_size: int = 8
    """Samples per forward/backward pass."""
    eval_seeds: int = 16
    """Held-out tasks (seeds from 1,000,000) evaluated greedily before and after; 0 skips."""
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(progress=False))
    """Turn and token limits, env kwargs, history and sampling of every rollout."""
    out_dir: str = "runs/sft"
    """Where the demonstrations, metrics and the model go."""
    save_model: bool = True
    """Save the fine-tuned model and tokenizer to ``out_dir/model``."""
    device: str | None = None
    """torch device; None picks CUDA when present, else CPU."""


def run_sft(cfg: SFTConfig, policy: Any | None = None) -> dict[str, float]:
    """Collect demonstrations, fine-tune on them, evaluate; return the figures.

    Returns:
        ``demonstrations`` (episodes kept), ``loss_first`` / ``loss_last`` and, with
        ``eval_seeds``, ``success_before`` / ``success_after``.
    """
    from agentgym.policies import load_policy
    from agentgym.recipes.experts import expert_policy
    from agentgym.rollout import evaluate

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy = policy or load_policy(cfg.model, cfg.device)
    seeds = list(range(cfg.tasks))
    held_out = list(range(1_000_000, 1_000_000 + cfg.eval_seeds))
    figures: dict[str, float] = {}
    if held_out:
        figures["success_before"] = evaluate(policy, cfg.env_id, held_out, cfg.collect)[
            "success_rate"
        ]
    if cfg.source == "expert":
        demos = demonstrations(
            expert_policy(cfg.env_id, policy.tokenizer), cfg.env_id, seeds, cfg.collect
        )
    else:
        demos = rejection_sample(policy, cfg.env_id, seeds, cfg.collect, samples=cfg.samples)
    with (out / "demonstrations.jsonl").open("w") as f:
        f.writelines(t.to_json() + "\n" for t in demos)
    losses = sft_update(
        policy.model, demos, epochs=cfg.epochs, lr=cfg.lr, micro_batch_size=cfg.micro_batch_size
    )
    figures |= {
        "demonstrations": float(len(demos)),
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }
    if held_out:
        figures["success_after"] = evaluate(policy, cfg.env_id, held_out, cfg.collect)[
            "success_rate"
        ]
    (out / "metrics.json").write_text(json.dumps({"config": asdict(cfg), **figures}, indent=2))
    if cfg.save_model:
        policy.model.save_pretrained(out / "model")
        policy.tokenizer.save_pretrained(out / "model")
    return figures
