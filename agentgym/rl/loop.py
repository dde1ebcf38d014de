"""The training loop: collect, advantages, update, sync, log, checkpoint.

It reads top to bottom (see :func:`train`)::

    collect (this rank's share) -> compute_advantages -> filter -> Trainer.update
      -> policy refreshed -> metrics logged -> checkpoint every N steps

Resuming (``TrainConfig.resume = RUN_DIR``) loads the last checkpoint of that run
(weights or adapter, optimizer, scheduler, RNG states, the collector's sampling
counter), cuts ``metrics.jsonl`` back to what that checkpoint had seen, and goes on:
the resumed run logs the same metrics, step for step, as a run never interrupted.

Started with ``torchrun --nproc-per-node N`` or ``accelerate launch`` (``WORLD_SIZE
> 1``), each process collects its share of the step's tasks (whole groups, so the
advantages are computed on complete groups), and :class:`~agentgym.rl.trainer.Trainer`
makes the update DDP all-reduces; rank 0 writes metrics and checkpoints.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.errors import ConfigError
from agentgym.rl.advantages import compute_advantages, group_stats, trajectory_rewards
from agentgym.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint
from agentgym.rl.config import TrainConfig
from agentgym.rl.filters import informative_groups, select
from agentgym.rl.loggers import LOGGERS, JsonlLogger
from agentgym.rl.trainer import Trainer
from agentgym.rollout.collector import Collector
from agentgym.rollout.metrics import evaluate, rollout_metrics
from agentgym.trajectory import Trajectory

__all__ = ["TrainResult", "train", "task_seeds", "logprob_space", "sync_weights"]


@dataclass
class TrainResult:
    """What a run produced: per-step metrics and held-out success before/after."""

    history: list[dict[str, float]]
    success_before: float | None
    success_after: float | None
    out_dir: Path


def task_seeds(config: TrainConfig, step: int, round_: int = 0) -> list[int]:
    """The step's task seeds; resampling rounds (``round_ > 0``) get fresh ones."""
    base = config.seed * 1_000_003 + step * config.tasks_per_step + round_ * 100_000_007
    return [base + i for i in range(config.tasks_per_step)]


def logprob_space(config: TrainConfig, policy: Any) -> float | None:
    """The top-p nucleus the trainer must renormalise over, or None (full vocabulary).

    With ``top_p < 1`` samplers differ: the HF policy reports logprobs over the full
    tempered vocabulary, vLLM's processed logprobs are renormalised over the nucleus.
    The trainer must match, or the importance ratio is biased.

    Raises:
        ConfigError: ``top_p < 1`` with ``logprob.space = "auto"`` and a sampler whose
            convention is unknown.
    """
    top_p = config.collect.sampling.top_p
    space = config.logprob.space
    if top_p >= 1.0 or space == "full":
        return None
    if space == "nucleus":
        return top_p
    kind = type(policy).__name__
    if kind == "HFPolicy":
        return None
    if kind == "VLLMPolicy":
        return top_p
    raise ConfigError(
        f"collect.sampling.top_p={top_p} < 1 with a {kind} sampler: its logprobs may be "
        "renormalised over the top-p nucleus (vLLM's processed logprobs) or not, and the "
        "trainer's must be computed the same way or every importance ratio is biased. Set "
        "--logprob.space nucleus (vLLM and servers built on it) or full (samplers reporting "
        "full-vocabulary logprobs), or sample with top_p=1"
    )


def sync_weights(policy: Any, trainer: Trainer, sync_dir: str = "") -> None:
    """Hand the new weights (merged, with LoRA) to a sampler that holds its own copy.

    An in-process engine (vLLM) loads them directly; servers (``openai:``, ``ray:``)
    through their ``sync_weights``: OpenAI-compatible servers reload them from
    ``sync_dir``, where they are written first. A policy sharing the trained model
    (HF) needs nothing.
    """
    if hasattr(policy, "load_weights"):
        policy.load_weights(trainer.serving_model())
    elif hasattr(policy, "sync_weights"):
        policy.sync_weights(trainer.serving_model(), path=sync_dir or None)


def _sampler(cfg: TrainConfig, policy: Any, device: str | None) -> Any:
    """The policy that samples rollouts: ``cfg.sampler`` if set, else the trained one."""
    if not cfg.sampler:
        return policy
    from agentgym.policies import make_policy

    spec = cfg.sampler
    if spec.startswith("openai:") and "@" not in spec:  # the trained model's tokenizer
        spec += "@" + str(policy.tokenizer.name_or_path)
    return make_policy(spec, device=device, seed=cfg.seed)


def _accelerator() -> Any:
    """An ``accelerate.Accelerator`` when launched with several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from agentgym.errors import require

    accelerate = require("accelerate", "hf", "multi-process training")
    import torch

    # Without CUDA, accelerate runs several processes only when told cpu=True (gloo).
    acc = accelerate.Accelerator(cpu=not torch.cuda.is_available())
    if acc.num_processes <= 1:
        raise ConfigError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but accelerate set up "
            f"{acc.distributed_type}: launch with torchrun or accelerate launch"
        )
    return acc


def _collect(
    cfg: TrainConfig,
    collector: Collector,
    trainer: Trainer,
    step: int,
    out: Path,
    rank: tuple[int, int],
    resume: bool = False,
) -> tuple[list[Trajectory], list[Any], list[Trajectory], dict[str, float]]:
    """Collect this rank's groups; return (update batch, advantages, all collected, metrics).

    ``resume``: keep the trajectories a killed run already wrote for this step (they were
    sampled from the checkpoint's weights with the same per-episode seeds) and collect only
    the missing ones.
    """
    r, world = rank
    filt = cfg.filter
    batch: list[Trajectory] = []
    advs: list[Any] = []
    seen: list[Trajectory] = []
    metrics: dict[str, float] = {"filter/dropped": 0.0, "filter/masked_truncated": 0.0}
    want = len(task_seeds(cfg, step)[r::world])
    informative = 0
    for round_ in range(1 + (filt.max_resample_rounds if filt.zero_variance == "resample" else 0)):
        seeds = task_seeds(cfg, step, round_)[r::world]
        name = f"step{step:05d}" + (f"-r{round_}" if round_ else "") + (f".rank{r}" if r else "")
        path = out / "rollouts" / f"{name}.jsonl"
        trajs = collector.collect(cfg.env_id, seeds, out=path, resume=resume and path.exists())
        seen += trajs
        penalty = None
        if trainer.reference is not None and cfg.kl.where == "reward":
            kl = trainer.sequence_kl(trajs)
            penalty = cfg.kl.coef * kl
            metrics["kl/reward_penalty_mean"] = float(np.mean(penalty)) if len(penalty) else 0.0
            metrics["kl/sequence_mean"] = float(np.mean(kl)) if len(kl) else 0.0
        adv, _ = compute_advantages(cfg.estimator, trajs, cfg.reward, penalty)
        kept, kept_adv, counts = select(trajs, adv, filt, cfg.reward)
        batch += kept
        advs += kept_adv
        for k, v in counts.items():
            metrics[k] += v
        informative += len(informative_groups(trajs, cfg.reward))
        if filt.zero_variance != "resample" or informative >= want:
            break
    metrics["filter/rounds"] = float(round_ + 1)
    return batch, advs, seen, metrics


def train(
    config: TrainConfig,
    policy: Any | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run the on-policy loop; metrics also go to ``out_dir/metrics.jsonl``.

    Args:
        config: the run's configuration (``resume`` set: continue that run).
        policy: an HF policy to train in place (default: loaded from ``config.model``).
        on_step: called with (step, metrics) after each update.
        progress: show progress bars.
    """
    import torch

    # LoRA's initialisation and dropout draw from torch's global RNG: seed it for the run
    # (resumes restore it), inside a fork so that the caller's stream is left as it was.
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        torch.manual_seed(config.seed)
        return _train(config, policy, on_step, progress)


def _collector(cfg: TrainConfig, policy: Any, rank: int) -> Collector:
    collect_cfg = replace(cfg.collect, progress=False)
    if collect_cfg.sampling.seed is None:  # the run's seed also seeds the sampler
        seed = cfg.seed + 7_919 * rank
        collect_cfg = replace(collect_cfg, sampling=replace(collect_cfg.sampling, seed=seed))
    return Collector(policy, collect_cfg)


def _rollout_metrics(cfg: TrainConfig, seen: list[Trajectory], acc: Any) -> dict[str, float]:
    """``rollout/…`` and ``reward/…`` of every process's trajectories."""
    if acc is not None:
        from accelerate.utils import gather_object

        seen = gather_object(seen)
    metrics = rollout_metrics(seen)
    stats = group_stats(trajectory_rewards(seen, cfg.reward), [t.group_id for t in seen])
    metrics["rollout/zero_signal_groups"] = float(stats.zero_signal_groups)
    metrics["rollout/zero_signal_fraction"] = stats.zero_signal_fraction
    return metrics


def _train(
    config: TrainConfig,
    policy: Any | None,
    on_step: Callable[[int, dict[str, float]], None] | None,
    progress: bool,
) -> TrainResult:
    from tqdm.auto import tqdm

    from agentgym.policies import load_policy

    cfg = config
    out = Path(cfg.resume or cfg.out_dir)
    acc = _accelerator()
    rank = (acc.process_index, acc.num_processes) if acc is not None else (0, 1)
    main = rank[0] == 0
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if cfg.resume and not (out / "metrics.jsonl").exists():
        raise ConfigError(f"--resume {out}: no run there (no metrics.jsonl); check the path")
    out.mkdir(parents=True, exist_ok=True)
    if main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    device = str(acc.device) if acc is not None else cfg.device
    policy = policy or load_policy(cfg.model, device)
    trainer = Trainer(policy.model, cfg, acc)
    sampler = _sampler(cfg, policy, device)
    trainer.nucleus_top_p = logprob_space(cfg, sampler)

    def sync() -> None:
        remote = hasattr(sampler, "sync_weights") and not hasattr(sampler, "load_weights")
        if main or not remote:  # servers: one process writes and asks for the reload
            sync_weights(sampler, trainer, cfg.sync_dir)
        if remote and acc is not None:
            acc.wait_for_everyone()

    collector = _collector(cfg, sampler, rank[0])
    collect_cfg = collector.config
    eval_seeds = list(range(cfg.eval_seed_offset, cfg.eval_seed_offset + cfg.eval_seeds))
    state: dict[str, Any] = {}
    if ckpt is not None:
        state = load_checkpoint(ckpt, trainer, rank=rank[0])
        sync()
    log = JsonlLogger(out / "metrics.jsonl", state.get("metrics_offset")) if main else None
    extra = [LOGGERS.get(n)(out, asdict(cfg)) for n in cfg.loggers] if main else []
    history: list[dict[str, float]] = []
    before = state.get("success_before")
    after = None
    if eval_seeds and ckpt is None and main:
        before = evaluate(sampler, cfg.env_id, eval_seeds, collect_cfg)["success_rate"]
        log.log({"step": 0, "eval/success_rate": before}, 0)  # type: ignore[union-attr]
    start = int(state.get("step", 0))
    for step in tqdm(range(start, cfg.steps), desc="train", disable=not progress or not main):
        t0 = time.perf_counter()
        first_after_resume = ckpt is not None and step == start
        batch, advs, seen, fmetrics = _collect(
            cfg, collector, trainer, step, out, rank, resume=first_after_resume
        )
        metrics = {"step": float(step + 1)} | _rollout_metrics(cfg, seen, acc) | fmetrics
        metrics |= trainer.update(batch, advs)
        sync()
        metrics["perf/step_seconds"] = time.perf_counter() - t0
        history.append(metrics)
        for lg in [log, *extra] if main else []:
            lg.log(metrics, step + 1)  # type: ignore[union-attr]
        every = cfg.checkpoint.every
        if every and ((step + 1) % every == 0 or step + 1 == cfg.steps):
            rngs = [rng_state()]
            if acc is not None:  # every rank's streams, so that each resumes its own
                from accelerate.utils import gather_object

                rngs = gather_object(rngs)
            if main:
                save_checkpoint(
                    out,
                    step + 1,
                    trainer,
                    {
                        "metrics_offset": log.tell(),  # type: ignore[union-attr]
                        "success_before": before,
                    },
                    keep=cfg.checkpoint.keep,
                    rng_states=rngs,
                )
        if on_step is not None:
            on_step(step, metrics)
    if eval_seeds and main:
        after = evaluate(sampler, cfg.env_id, eval_seeds, collect_cfg)["success_rate"]
        log.log({"step": cfg.steps, "eval/success_rate": after}, cfg.steps)  # type: ignore[union-attr]
    for lg in [log, *extra] if main else []:
        lg.close()  # type: ignore[union-attr]
    if cfg.save_model and main:
        trainer.save(out / "model", policy.tokenizer)
    return TrainResult(history, before, after, out)
