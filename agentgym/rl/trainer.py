"""The trainer: policy-gradient updates of a causal LM from collected trajectories.

:meth:`Trainer.update` turns trajectories and their advantages into per-token
advantages on each token ledger, recomputes the policy's logprobs of the sampled
tokens and applies the configured loss (:mod:`agentgym.rl.losses`), with the
sampler's logprobs as the old logprobs and token-mean aggregation over the batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentgym.errors import require
from agentgym.rl.config import TrainConfig
from agentgym.rl.losses import LOSSES
from agentgym.trajectory import TokenLedger, Trajectory

__all__ = ["Trainer"]


def _torch() -> Any:
    return require("torch", "hf", "training")


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
        >>> from agentgym.policies.hf import HFPolicy
        >>> from agentgym.policies.scripted import RandomChoicePolicy
        >>> from agentgym.policies.tinymodels import build_tiny_chat_model
        >>> from agentgym.rollout import collect
        >>> policy = HFPolicy.from_pretrained(build_tiny_chat_model("tiny", words=["left"]))
        >>> demo = RandomChoicePolicy(["left", "right"], policy.tokenizer, seed=0)
        >>> trajs = collect(demo, "agentgym/FrozenLake-v0", range(2), max_turns=2, progress=False)
        >>> trainer = Trainer(policy.model, TrainConfig(lr=1e-4))
        >>> metrics = trainer.update(trajs, [1.0, -1.0])
        >>> metrics["perf/trained_samples"], metrics["loss/grad_norm"] > 0
        (2.0, True)
    """

    def __init__(self, model: Any, config: TrainConfig) -> None:
        torch = _torch()
        self.model = model
        self.config = config
        self.loss_fn = LOSSES.get(config.loss)
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
