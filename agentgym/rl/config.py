"""The training configuration: one dataclass, composed of the collection config.

:class:`TrainConfig` holds a :class:`~agentgym.rollout.CollectConfig` (group size,
turn and token limits, env kwargs, history), which holds the
:class:`~agentgym.policies.base.SamplingParams` (temperature, top-p, tokens per
turn); each knob has one default, in the dataclass that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agentgym.config import from_dict
from agentgym.errors import ConfigError
from agentgym.rl.advantages import get as get_estimator
from agentgym.rl.losses import LOSSES
from agentgym.rollout.collector import CollectConfig

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything one training run needs; unknown keys fail in :meth:`from_dict`.

    Example:
        >>> from agentgym.rollout import CollectConfig
        >>> from agentgym.policies.base import SamplingParams
        >>> cfg = TrainConfig(collect=CollectConfig(group_size=4,
        ...                                         sampling=SamplingParams(temperature=0.7)))
        >>> cfg.group_size, cfg.logprob_temperature
        (4, 0.7)
        >>> TrainConfig.from_dict({"collect": {"sampling": {"top_p": 0.9}}}).collect.sampling.top_p
        0.9
    """

    env_id: str = "agentgym/FrozenLake-v0"
    """Registered env to train on."""
    model: str = "default"
    """Model path or hub-style name; ``default`` is the embedded SmolLM2-135M-Instruct."""
    steps: int = 10
    """Number of collect/update iterations."""
    tasks_per_step: int = 8
    """Distinct tasks (seeds) per step."""
    estimator: str = "grpo"
    """Advantage estimator name (see ``agentgym.rl.advantages.available()``)."""
    reward: Literal["total", "outcome"] = "total"
    """Which scalar the estimator sees: summed turn rewards or the outcome only."""
    loss: str = "ppo_clip"
    """Policy loss name (see :func:`agentgym.rl.losses.policy_losses`)."""
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
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(group_size=8))
    """How each step collects: group size (G), turn and token limits, env kwargs, history,
    and the sampling parameters (temperature, top-p, tokens per turn)."""
    seed: int = 0
    """Seed of task selection, and of the sampler unless ``collect.sampling.seed`` is set."""
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
        if self.steps < 0 or self.tasks_per_step < 1:
            raise ConfigError(
                f"steps must be >= 0 and tasks_per_step >= 1, got {self.steps} and "
                f"{self.tasks_per_step}"
            )
        LOSSES.get(self.loss)  # raises with the valid names
        get_estimator(self.estimator)  # raises with the valid names
        if self.reward not in ("total", "outcome"):
            raise ConfigError(f"reward must be 'total' or 'outcome', got {self.reward!r}")
        if self.micro_batch_size < 1 or self.epochs < 1:
            raise ConfigError("micro_batch_size and epochs must be >= 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a (nested) dict, e.g. a parsed config file; unknown keys raise."""
        return from_dict(cls, d)

    @property
    def logprob_temperature(self) -> float:
        """Temperature for recomputed logprobs (greedy sampling reports untempered ones)."""
        temperature = self.collect.sampling.temperature
        return temperature if temperature > 0 else 1.0

    @property
    def group_size(self) -> int:
        """Samples per task (G): ``collect.group_size``."""
        return self.collect.group_size
