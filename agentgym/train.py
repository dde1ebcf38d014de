"""The trainer: policy-gradient losses and the on-policy update loop.

The loop reads top to bottom (see :func:`train`)::

    collect -> compute_advantages -> Trainer.update -> policy refreshed

Losses are registered by name like the advantage estimators; the default
``ppo_clip`` is the PPO clipped surrogate on the masked (sampled) tokens, with
the sampler's logprobs as the old logprobs and token-mean aggregation over the
whole batch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentgym.advantages import GroupStats, compute_advantages
from agentgym.advantages import get as get_estimator
from agentgym.errors import ConfigError, DependencyMissing
from agentgym.trajectory import TokenLedger, Trajectory

__all__ = [
    "TrainConfig",
    "Trainer",
    "register_loss",
    "policy_losses",
    "rollout_metrics",
    "evaluate",
    "load_policy",
    "TrainResult",
    "train",
]


def _torch():
    try:
        import torch
    except ImportError as e:
        raise DependencyMissing("torch", "hf", "training") from e
    return torch


# --------------------------------------------------------------------------- losses
PolicyLoss = Callable[..., tuple[Any, dict[str, float]]]
_LOSSES: dict[str, PolicyLoss] = {}


def register_loss(name: str) -> Callable[[PolicyLoss], PolicyLoss]:
    """Register a policy loss ``(logp, old_logp, adv, mask, cfg) -> (per_token_loss, metrics)``.

    All tensors are ``[B, T]``; ``mask`` is 1.0 on trained tokens.
    """

    def deco(fn: PolicyLoss) -> PolicyLoss:
        _LOSSES[name] = fn
        return fn

    return deco


def policy_losses() -> list[str]:
    """Names of the registered policy losses."""
    return sorted(_LOSSES)


@register_loss("ppo_clip")
def ppo_clip(logp, old_logp, adv, mask, cfg: TrainConfig):
    """PPO clipped surrogate: ``-min(ratio * A, clip(ratio, 1-eps_lo, 1+eps_hi) * A)``."""
    torch = _torch()
    log_ratio = (logp - old_logp) * mask
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    loss = -torch.minimum(ratio * adv, clipped * adv)
    with torch.no_grad():
        n = mask.sum().clamp(min=1)
        clip_frac = (((ratio - clipped).abs() > 1e-9).float() * mask).sum() / n
        approx_kl = (((ratio - 1) - log_ratio) * mask).sum() / n  # k3 estimator
    return loss, {"loss/clip_frac": float(clip_frac), "loss/approx_kl": float(approx_kl)}


@register_loss("reinforce")
def reinforce(logp, old_logp, adv, mask, cfg: TrainConfig):
    """Plain REINFORCE with importance ratio detached: ``-A * logp``."""
    return -adv * logp, {}


# --------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything one training run needs; unknown keys fail in :meth:`from_dict`."""

    env_id: str = "agentgym/FrozenLake-v0"
    """Registered env to train on."""
    model: str = "default"
    """Model path or hub-style name; ``default`` is the embedded SmolLM2-135M-Instruct."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the env constructor."""
    steps: int = 10
    """Number of collect/update iterations."""
    tasks_per_step: int = 8
    """Distinct tasks (seeds) per step."""
    group_size: int = 8
    """Samples per task (G)."""
    estimator: str = "grpo"
    """Advantage estimator name (see ``agentgym.advantages.available()``)."""
    reward: Literal["total", "outcome"] = "total"
    """Which scalar the estimator sees: summed turn rewards or the outcome only."""
    loss: str = "ppo_clip"
    """Policy loss name (see :func:`policy_losses`)."""
    lr: float = 1e-5
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    clip_low: float = 0.2
    """PPO clip range below 1."""
    clip_high: float = 0.2
    """PPO clip range above 1 (raise it for DAPO-style clip-higher)."""
    lr_warmup_steps: int = 0
    """Optimizer steps over which the learning rate ramps linearly from lr/warmup up to lr
    (Adam's first steps move every weight by about lr, whatever the gradient)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    epochs: int = 1
    """Passes over each batch of rollouts."""
    micro_batch_size: int = 16
    """Samples per forward/backward pass."""
    temperature: float = 1.0
    """Sampling temperature, also used for the trainer's logprobs."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_new_tokens: int = 64
    """Tokens per assistant turn."""
    max_turns: int | None = None
    """Turn limit (None keeps the env's registered one)."""
    max_episode_tokens: int = 2048
    """Token budget per episode."""
    history: int | None = None
    """Turns kept in the prompt (None: all; k: system prompt + last k turns; see CollectConfig)."""
    seed: int = 0
    """Seed of task selection and sampling."""
    eval_seeds: int = 0
    """Held-out tasks evaluated (greedy) before and after training; 0 skips."""
    eval_seed_offset: int = 1_000_000
    """Evaluation tasks use seeds from here on (training seeds never reach it)."""
    out_dir: str = "runs/train"
    """Where metrics.jsonl, rollouts and the final model go."""
    save_model: bool = True
    """Save the trained model and tokenizer to ``out_dir/model``."""
    device: str | None = None
    """torch device; None picks CUDA when present, else CPU."""

    def __post_init__(self) -> None:
        if self.steps < 0 or self.tasks_per_step < 1 or self.group_size < 1:
            raise ConfigError("steps must be >= 0, tasks_per_step and group_size >= 1")
        if self.loss not in _LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; available: {policy_losses()}")
        get_estimator(self.estimator)  # raises with the valid names
        if self.reward not in ("total", "outcome"):
            raise ConfigError(f"reward must be 'total' or 'outcome', got {self.reward!r}")
        if self.micro_batch_size < 1 or self.epochs < 1:
            raise ConfigError("micro_batch_size and epochs must be >= 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. parsed JSON); unknown keys raise with the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(
                f"unknown TrainConfig key(s) {sorted(unknown)}; valid: {sorted(names)}"
            )
        return cls(**d)

    @property
    def logprob_temperature(self) -> float:
        """Temperature for recomputed logprobs (greedy sampling reports untempered ones)."""
        return self.temperature if self.temperature > 0 else 1.0


# --------------------------------------------------------------------------- trainer
@dataclass
class _Sample:
    ledger: TokenLedger
    advantages: list[float]
    """Per-token advantages (0 outside sampled turns)."""


def _token_advantages(ledger: TokenLedger, turn_adv: Sequence[float]) -> list[float]:
    out = [0.0] * len(ledger)
    for (s, e), a in zip(ledger.turn_spans, turn_adv, strict=False):
        out[s:e] = [float(a)] * (e - s)
    return out


def _samples(traj: Trajectory, adv: Any) -> list[_Sample]:
    """Training samples of one trajectory with per-token advantages.

    ``adv`` is a scalar (whole trajectory) or one value per turn.
    """
    if isinstance(adv, (int, float, np.number)):
        turn_adv = [float(adv)] * len(traj.turns)
    else:
        turn_adv = [float(a) for a in adv]
    turn_adv = [0.0 if math.isnan(a) else a for a in turn_adv]
    if traj.per_turn_ledgers is not None:
        return [
            _Sample(led, _token_advantages(led, [a]))
            for led, a in zip(traj.per_turn_ledgers, turn_adv, strict=False)
        ]
    if traj.ledger is None:
        return []
    return [_Sample(traj.ledger, _token_advantages(traj.ledger, turn_adv))]


class Trainer:
    """Applies policy-gradient updates to a causal LM from collected trajectories.

    Example:
        >>> trainer = Trainer(model, TrainConfig(lr=1e-4))
        >>> metrics = trainer.update(trajectories, advantages)
    """

    def __init__(self, model: Any, config: TrainConfig) -> None:
        torch = _torch()
        self.model = model
        self.config = config
        self.loss_fn = _LOSSES[config.loss]
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        warmup = max(int(config.lr_warmup_steps), 0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda n: min(1.0, (n + 1) / warmup) if warmup else 1.0
        )
        self.device = next(model.parameters()).device

    def token_logprobs(self, input_ids, attention_mask):
        """Log-probs ``[B, T-1]`` of ``input_ids[:, 1:]`` at the config's temperature."""
        torch = _torch()
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        logits = logits.float() / self.config.logprob_temperature
        return torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)

    def _batch(self, samples: Sequence[_Sample]):
        torch = _torch()
        width = max(len(s.ledger) for s in samples)
        pad = lambda xs, v: list(xs) + [v] * (width - len(xs))  # noqa: E731
        ids = torch.tensor([pad(s.ledger.input_ids, 0) for s in samples], device=self.device)
        attn = torch.tensor([pad([1] * len(s.ledger), 0) for s in samples], device=self.device)
        mask = torch.tensor([pad(s.ledger.loss_mask, 0) for s in samples], device=self.device)
        old = torch.tensor([pad(s.ledger.logprobs, 0.0) for s in samples], device=self.device)
        adv = torch.tensor([pad(s.advantages, 0.0) for s in samples], device=self.device)
        return ids, attn, mask[:, 1:].float(), old[:, 1:].float(), adv[:, 1:].float()

    def update(
        self,
        trajs: Sequence[Trajectory],
        advantages: Sequence[Any] | np.ndarray,
    ) -> dict[str, float]:
        """One optimisation phase on a batch; returns ``loss/…`` and ``perf/…`` metrics.

        ``advantages[i]`` is trajectory i's advantage: a scalar, or one value
        per turn (turn-level estimators). Samples whose advantages are all 0 add
        no gradient and are skipped, but their tokens count in the token-mean
        denominator.
        """
        torch = _torch()
        cfg = self.config
        samples: list[_Sample] = []
        n_tokens = 0
        for t, a in zip(trajs, advantages, strict=True):
            for sample in _samples(t, a):
                n_tokens += sum(sample.ledger.loss_mask)
                if any(sample.advantages):
                    samples.append(sample)
        metrics: dict[str, float] = {
            "perf/trained_samples": float(len(samples)),
            "perf/tokens": float(n_tokens),
        }
        if not samples or n_tokens == 0:
            return metrics | {"loss/policy": 0.0, "loss/grad_norm": 0.0}
        self.model.train()
        start = time.perf_counter()
        agg: dict[str, list[float]] = {}
        for _ in range(cfg.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for i in range(0, len(samples), cfg.micro_batch_size):
                ids, attn, mask, old, adv = self._batch(samples[i : i + cfg.micro_batch_size])
                logp = self.token_logprobs(ids, attn)
                per_tok, extra = self.loss_fn(logp, old, adv, mask, cfg)
                loss = (per_tok * mask).sum() / n_tokens  # token-mean over the whole batch
                loss.backward()
                total += float(loss.detach())
                for k, v in extra.items():
                    agg.setdefault(k, []).append(v)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            agg.setdefault("loss/policy", []).append(total)
            agg.setdefault("loss/grad_norm", []).append(float(grad_norm))
        self.model.eval()
        metrics.update({k: float(np.mean(v)) for k, v in agg.items()})
        metrics["perf/update_seconds"] = time.perf_counter() - start
        metrics["optim/lr"] = float(self.optimizer.param_groups[0]["lr"])
        return metrics


# --------------------------------------------------------------------------- metrics
def rollout_metrics(
    trajs: Sequence[Trajectory], stats: GroupStats | None = None
) -> dict[str, float]:
    """``rollout/…`` and ``reward/…`` metrics of a batch of trajectories."""
    n = len(trajs)
    scorable = [t for t in trajs if t.scorable and t.status != "env_error"]
    out: dict[str, float] = {
        "rollout/episodes": float(n),
        "rollout/turns_mean": float(np.mean([len(t.turns) for t in trajs])) if n else 0.0,
        "rollout/env_errors": float(sum(t.status == "env_error" for t in trajs)),
        "rollout/infra_errors": float(sum(t.status == "infra_error" for t in trajs)),
        "rollout/truncated": float(sum(t.status == "truncated" for t in trajs)),
        "reward/success_rate": float(np.mean([bool(t.success) for t in scorable]))
        if scorable
        else 0.0,
        "reward/total_mean": float(np.mean([t.total_reward for t in scorable]))
        if scorable
        else 0.0,
        "reward/outcome_mean": float(np.mean([t.outcome or 0.0 for t in scorable]))
        if scorable
        else 0.0,
    }
    comps: dict[str, list[float]] = {}
    for t in scorable:
        for turn in t.turns:
            for k, v in turn.reward_components.items():
                comps.setdefault(k, []).append(v)
    out.update({f"reward/{k}_per_turn": float(np.mean(v)) for k, v in comps.items()})
    if stats is not None:
        out["rollout/zero_signal_groups"] = float(stats.zero_signal_groups)
        out["rollout/zero_signal_fraction"] = stats.zero_signal_fraction
    return out


def evaluate(
    policy: Any,
    env_id: str,
    seeds: Sequence[int],
    *,
    max_new_tokens: int = 64,
    **collect_kwargs: Any,
) -> dict[str, Any]:
    """Greedy success rate of ``policy`` on ``seeds`` (one episode per seed).

    Keyword arguments are :class:`~agentgym.collect.CollectConfig` fields.
    """
    from agentgym.collect import CollectConfig, Collector
    from agentgym.policies.base import SamplingParams

    collect_kwargs.setdefault(
        "sampling", SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    )
    collect_kwargs.setdefault("progress", False)
    config = CollectConfig(max_new_tokens=max_new_tokens, **collect_kwargs)
    trajs = Collector(policy, config).collect(env_id, list(seeds))
    m = rollout_metrics(trajs)
    return {
        "success_rate": m["reward/success_rate"],
        "outcome_mean": m["reward/outcome_mean"],
        "trajectories": trajs,
    }


# --------------------------------------------------------------------------- loop
def load_policy(model: str, device: str | None = None) -> Any:
    """An :class:`~agentgym.policies.hf.HFPolicy` for a path, name, or ``default``."""
    from agentgym.policies.hf import HFPolicy

    if model == "default":
        from agentgym.models import default_model_path

        model = str(default_model_path())
    return HFPolicy.from_pretrained(model, device=device)


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

    from agentgym.collect import CollectConfig, Collector
    from agentgym.policies.base import SamplingParams

    cfg = config
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    policy = policy or load_policy(cfg.model, cfg.device)
    trainer = Trainer(policy.model, cfg)
    sampling = SamplingParams(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
    )
    collector = Collector(
        policy,
        CollectConfig(
            group_size=cfg.group_size,
            max_turns=cfg.max_turns,
            max_new_tokens=cfg.max_new_tokens,
            max_episode_tokens=cfg.max_episode_tokens,
            history=cfg.history,
            sampling=sampling,
            env_kwargs=dict(cfg.env_kwargs),
            progress=False,
        ),
    )
    eval_seeds = list(range(cfg.eval_seed_offset, cfg.eval_seed_offset + cfg.eval_seeds))
    eval_kw: dict[str, Any] = dict(
        max_turns=cfg.max_turns,
        env_kwargs=dict(cfg.env_kwargs),
        max_episode_tokens=cfg.max_episode_tokens,
        history=cfg.history,
    )
    history: list[dict[str, float]] = []
    before = after = None
    with (out / "metrics.jsonl").open("w") as log:
        if eval_seeds:
            before = evaluate(policy, cfg.env_id, eval_seeds, **eval_kw)["success_rate"]
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
            metrics |= rollout_metrics(trajs, stats)
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
            after = evaluate(policy, cfg.env_id, eval_seeds, **eval_kw)["success_rate"]
            log.write(json.dumps({"step": cfg.steps, "eval/success_rate": after}) + "\n")
    if cfg.save_model:
        policy.model.save_pretrained(out / "model")
        policy.tokenizer.save_pretrained(out / "model")
    return TrainResult(history, before, after, out)
