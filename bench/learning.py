"""The proof that it learns: GRPO on a tiny locally built model.

The recipe lives in :mod:`agentgym.recipes.learning` (``agentgym demo`` runs it too); this
is its command line. The last line reads ``success_before=X success_after=Y steps=N
seconds=S``. Run: ``python bench/learning.py`` (``--quick`` is the smaller version the
tests run); every field of ``LearningConfig`` is a flag (``--seed 3``, ``--grpo-steps 60``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated

import tyro

from agentgym.config import cli_registry
from agentgym.recipes.learning import QUICK, LearningConfig, run


@dataclass
class Args:
    """Run the learning check and print its figures."""

    config: Annotated[LearningConfig, tyro.conf.arg(name="")] = field(
        default_factory=LearningConfig
    )
    """The run: env, tiny model, warm start, GRPO, evaluation."""
    quick: bool = False
    """The smaller version run by the tests (8 evaluation seeds)."""
    progress: bool = True
    """Show progress bars."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    default = Args(LearningConfig(**QUICK), quick=True) if "--quick" in argv else Args()
    args = tyro.cli(
        Args, args=argv, default=default, description=__doc__, registry=cli_registry()
    )
    res = run(args.config, progress=args.progress)
    sys.stdout.write(
        f"success_before={res['success_before']:.3f} success_after={res['success_after']:.3f} "
        f"steps={res['steps']} seconds={res['seconds']:.1f}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
