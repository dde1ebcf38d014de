"""The proof that it learns: GRPO on a tiny locally built model.

The recipes live in :mod:`agentgym.recipes.learning` (``agentgym demo`` runs one too);
this is their command line. ``--recipe`` picks a preset: ``frozenlake`` (a fixed 3x3
lake, the default), ``tools`` (agentgym/Lookup-v0: call the lookup tool, answer with
its result; turn-level credit), ``tools-outcome`` (the same with outcome-only GRPO),
``tools-gigpo`` (turn-level credit through GiGPO instead), ``random-maps`` (a new random
4x4 FrozenLake map per task, evaluated on maps never trained on). ``--compare`` runs ``tools``
then ``tools-outcome`` and prints the steps each took to reach the target.

The last line reads ``success_before=X success_after=Y steps=N seconds=S``. Run:
``python bench/learning.py --recipe tools`` (``--quick`` is the smaller version the tests
run); every field of ``LearningConfig`` is a flag and overrides the preset
(``--seed 3``, ``--grpo-steps 60``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Annotated, Any

import tyro

from agentgym.config import cli_registry
from agentgym.recipes.learning import (
    QUICK,
    QUICK_RECIPES,
    RECIPES,
    TARGET,
    LearningConfig,
    preset,
    run,
)


@dataclass
class Args:
    """Run a learning recipe and print its figures."""

    config: Annotated[LearningConfig, tyro.conf.arg(name="")] = field(
        default_factory=LearningConfig
    )
    """The run: env, tiny model, warm start, GRPO, evaluation (overrides the preset)."""
    recipe: str = "frozenlake"
    """Preset: frozenlake, tools, tools-outcome, tools-gigpo or random-maps."""
    compare: bool = False
    """Run ``tools`` and ``tools-outcome`` and report the steps each took to the target."""
    quick: bool = False
    """The smaller version run by the tests (fewer evaluation seeds; tools: 16 seeds, stop
    at the target; random-maps: 16 seeds, 50 steps)."""
    progress: bool = True
    """Show progress bars."""
    json_out: str = ""
    """Also write the figures (and curves) of each run to this JSON file."""


def _explicit(argv: list[str]) -> set[str]:
    """LearningConfig fields given on the command line (they override the preset)."""
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    return given & {f.name for f in fields(LearningConfig)}


def _config(name: str, args: Args, explicit: set[str]) -> LearningConfig:
    overrides: dict[str, Any] = {k: getattr(args.config, k) for k in explicit}
    if args.quick:
        overrides = {**QUICK, **QUICK_RECIPES.get(name, {}), **overrides}
    if args.config.out_dir and args.compare:
        overrides["out_dir"] = f"{args.config.out_dir}/{name}"
    return preset(name, **overrides)


def _line(res: dict[str, Any]) -> str:
    return (
        f"success_before={res['success_before']:.3f} success_after={res['success_after']:.3f} "
        f"steps={res['steps']} seconds={res['seconds']:.1f}"
    )


def _details(name: str, res: dict[str, Any]) -> str:
    curve = " ".join(f"{s}:{r:.2f}" for s, r in res["curve"])
    reached = res["steps_to_target"]
    new = ""
    if "held_out_novel" in res:
        new = (
            f"; held-out tasks never trained on: {res['held_out_novel']:.0%}, "
            f"success on them {res['success_after_novel']:.3f}"
        )
    return (
        f"[{name}] held-out greedy success by step: {curve}; steps to {TARGET}: "
        f"{reached if reached >= 0 else 'not reached'}; tool calls/episode "
        f"{res['before_tool_calls_per_episode']:.2f} -> {res['tool_calls_per_episode']:.2f}; "
        f"invalid rate {res['before_invalid_rate']:.2f} -> {res['invalid_rate']:.2f}{new}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = tyro.cli(Args, args=argv, description=__doc__, registry=cli_registry())
    explicit = _explicit(argv)
    names = ["tools", "tools-outcome"] if args.compare else [args.recipe]
    if any(n not in RECIPES for n in names):
        sys.stderr.write(f"unknown recipe {args.recipe!r}; choose one of {sorted(RECIPES)}\n")
        return 2
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        cfg = _config(name, args, explicit)
        results[name] = res = run(cfg, progress=args.progress)
        sys.stdout.write(_details(name, res) + "\n")
        sys.stdout.flush()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(
                {
                    n: {"config": asdict(_config(n, args, explicit)), **r}
                    for n, r in results.items()
                },
                f,
                indent=2,
            )
    if args.compare:
        steps = {n: r["steps_to_target"] for n, r in results.items()}
        sys.stdout.write("steps_to_target " + " ".join(f"{n}={s}" for n, s in steps.items()) + "\n")
    sys.stdout.write(_line(results[names[0]]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
