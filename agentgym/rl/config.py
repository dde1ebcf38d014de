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

__all__ = [
    "TrainConfig",
    "KLConfig",
    "LoraConfig",
    "CheckpointConfig",
    "LogprobConfig",
    "FilterConfig",
    "LOSS_AGGREGATIONS",
]

#: Loss aggregation modes (see :func:`agentgym.rl.losses.aggregate`).
LOSS_AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "token_sum_norm")


@dataclass
class KLConfig:
    """KL divergence to a frozen reference policy (the starting model)."""

    coef: float = 0.0
    """beta: weight of the KL term; 0 loads no reference model at all."""
    estimator: Literal["k1", "k2", "k3"] = "k3"
    """Per-token estimator of KL(pi || ref) (see :mod:`agentgym.rl.kl`)."""
    where: Literal["loss", "reward"] = "loss"
    """``loss``: beta x KL added to the per-token loss; ``reward``: beta x (summed KL of a
    trajectory) subtracted from its reward before the advantages."""

    def __post_init__(self) -> None:
        if self.coef < 0:
            raise ConfigError(f"kl.coef must be >= 0, got {self.coef}")
        if self.estimator not in ("k1", "k2", "k3"):
            raise ConfigError(f"kl.estimator must be k1, k2 or k3, got {self.estimator!r}")
        if self.where not in ("loss", "reward"):
            raise ConfigError(f"kl.where must be 'loss' or 'reward', got {self.where!r}")


@dataclass
class LoraConfig:
    """LoRA adapters through peft; rank 0 trains every parameter instead."""

    rank: int = 0
    """Adapter rank r; 0 disables LoRA (full fine-tuning)."""
    alpha: float = 16.0
    """Scaling numerator: the update is (alpha / r) x B A."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt (e.g. q_proj v_proj); ``all-linear`` = every linear layer
    but the output head."""
    dropout: float = 0.0
    """Dropout on the adapter's input."""

    def __post_init__(self) -> None:
        if self.rank < 0 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError(
                f"lora needs rank >= 0, alpha > 0 and 0 <= dropout < 1, got rank={self.rank}, "
                f"alpha={self.alpha}, dropout={self.dropout}"
            )

    @property
    def enabled(self) -> bool:
        """Whether LoRA is on (``rank > 0``)."""
        return self.rank > 0


@dataclass
class CheckpointConfig:
    """Checkpoints in ``out_dir/checkpoints``: everything needed to resume exactly."""

    every: int = 0
    """Write one every N steps (and after the last); 0 writes none."""
    keep: int = 2
    """How many recent checkpoints to keep (older ones are deleted)."""

    def __post_init__(self) -> None:
        if self.every < 0 or self.keep < 1:
            raise ConfigError(
                f"checkpoint.every must be >= 0 and keep >= 1, got {self.every}, {self.keep}"
            )


@dataclass
class LogprobConfig:
    """Sampler-vs-trainer logprob consistency: metrics, a correction, the nucleus."""

    bound: float = 0.5
    """|trainer - sampler| logprob beyond which a token counts in
    ``logprob/frac_beyond_bound``."""
    correction: Literal["none", "tis"] = "none"
    """``tis``: truncated importance sampling; the trainer's own logprobs become the old
    ones and each token's loss is weighted by min(exp(trainer - sampler), cap)."""
    tis_cap: float = 2.0
    """Cap of the truncated importance weight."""
    space: Literal["auto", "full", "nucleus"] = "auto"
    """Vocabulary the trainer normalises over when ``top_p < 1``: ``full`` (the HF
    sampler's convention), ``nucleus`` (vLLM's processed logprobs, renormalised over the
    top-p set); ``auto`` picks from the policy and refuses when it cannot tell."""

    def __post_init__(self) -> None:
        if self.bound <= 0 or self.tis_cap < 1:
            raise ConfigError(
                f"logprob.bound must be > 0 and tis_cap >= 1, got {self.bound}, {self.tis_cap}"
            )
        if self.correction not in ("none", "tis"):
            raise ConfigError(f"logprob.correction must be none or tis, got {self.correction!r}")
        if self.space not in ("auto", "full", "nucleus"):
            raise ConfigError(f"logprob.space must be auto, full or nucleus, got {self.space!r}")


@dataclass
class FilterConfig:
    """Which trajectories reach the update (infra_error ones never do)."""

    zero_variance: Literal["keep", "drop", "resample"] = "keep"
    """Groups whose rewards are all equal: ``keep`` them (advantage 0, their tokens in the
    denominator), ``drop`` them (DAPO dynamic sampling), or drop them and ``resample``
    fresh tasks until the step has ``tasks_per_step`` informative groups."""
    max_resample_rounds: int = 4
    """Extra collection rounds at most per step with ``resample``."""
    mask_truncated: bool = False
    """Leave out of the loss the episodes cut by a turn or token limit (still in the
    group baselines)."""

    def __post_init__(self) -> None:
        if self.zero_variance not in ("keep", "drop", "resample"):
            raise ConfigError(
                f"filter.zero_variance must be keep, drop or resample, got {self.zero_variance!r}"
            )
        if self.max_resample_rounds < 0:
            raise ConfigError("filter.max_resample_rounds must be >= 0")


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
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "token_sum_norm"] = "token_mean"
    """How per-token losses become one number (see :func:`agentgym.rl.losses.aggregate`):
    mean over every token of the batch, mean over sequences of each sequence's token mean
    (GRPO paper), or token sum / (sequences x ``loss_agg_norm``) (Dr. GRPO)."""
    loss_agg_norm: int | None = None
    """The constant of ``token_sum_norm``; None uses ``collect.max_episode_tokens``."""
    kl: KLConfig = field(default_factory=KLConfig)
    """KL to the reference (starting) policy: coefficient, estimator, in loss or reward."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA adapters (peft); rank 0 = full fine-tuning."""
    logprob: LogprobConfig = field(default_factory=LogprobConfig)
    """Sampler-vs-trainer logprob checks and the optional importance-sampling correction."""
    filter: FilterConfig = field(default_factory=FilterConfig)
    """Group filtering (zero-variance groups) and masking of truncated episodes."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoint frequency and retention."""
    resume: str | None = None
    """Resume the run in this directory from its last checkpoint (the CLI then takes the
    run's saved config.json)."""
    loggers: list[str] = field(default_factory=list)
    """Metric sinks besides metrics.jsonl: ``tensorboard``, ``wandb`` (optional extras)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``auto``: bf16 autocast on CUDA, fp32 elsewhere; ``bf16`` autocast; ``fp32`` none."""
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
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    """After the warm-up: keep ``lr``, or decay it (linearly, or along a half cosine) to
    ``lr * lr_min_ratio`` at the run's last optimizer step (``steps * epochs``: one
    optimizer step per epoch of each batch)."""
    lr_min_ratio: float = 0.1
    """The decayed schedules' final learning rate, as a fraction of ``lr``."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    entropy_coef: float = 0.0
    """Entropy bonus: the loss subtracts this times each trained token's policy entropy
    (full vocabulary), against early collapse onto one action (0: none, no extra work)."""
    epochs: int = 1
    """Passes over each batch of rollouts."""
    micro_batch_size: int = 16
    """Samples per forward/backward pass."""
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(group_size=8))
    """How each step collects: group size (G), turn and token limits, env kwargs, history,
    and the sampling parameters (temperature, top-p, tokens per turn)."""
    sampler: str = ""
    """Where rollouts are sampled when not by the trained model in this process: a policy
    spec, ``openai:URL`` (OpenAI-compatible servers, comma-separated for several: vLLM
    with ``VLLM_SERVER_DEV_MODE=1``, or ``agentgym serve``) or ``ray:...``. After every
    update the new weights (merged, with LoRA) go to it: for ``openai:`` servers they are
    written to ``sync_dir`` and each server reloads them. Empty: the trained model samples."""
    sync_dir: str = ""
    """The model directory the ``openai:`` sampler's servers serve, on a filesystem they
    share with the trainer (start them on a copy of ``model``)."""
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
        if self.loss_agg not in LOSS_AGGREGATIONS:
            raise ConfigError(f"loss_agg must be one of {LOSS_AGGREGATIONS}, got {self.loss_agg!r}")
        if self.loss_agg_norm is not None and self.loss_agg_norm < 1:
            raise ConfigError(f"loss_agg_norm must be >= 1 or None, got {self.loss_agg_norm}")
        if self.entropy_coef < 0:
            raise ConfigError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ConfigError(
                f"lr_schedule must be constant, linear or cosine, got {self.lr_schedule!r}"
            )
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            raise ConfigError(f"lr_min_ratio must be in [0, 1], got {self.lr_min_ratio}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.sampler.startswith("openai:") and not self.sync_dir:
            raise ConfigError(
                "sampler='openai:...' needs sync_dir: the model directory the servers serve, "
                "where the trainer writes each update's weights for them to reload"
            )
        unknown = [name for name in self.loggers if name not in ("tensorboard", "wandb")]
        if unknown:
            raise ConfigError(f"unknown logger(s) {unknown}; valid: tensorboard, wandb")

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
    def agg_norm(self) -> int:
        """The Dr. GRPO constant: ``loss_agg_norm`` or ``collect.max_episode_tokens``."""
        return self.loss_agg_norm or self.collect.max_episode_tokens

    @property
    def group_size(self) -> int:
        """Samples per task (G): ``collect.group_size``."""
        return self.collect.group_size
