"""Plot held-out greedy success curves from ``bench/learning.py --json-out`` files.

Run: ``python bench/plot_learning.py runs/tools.json runs/random-maps.json --out docs/learning.png``
(needs matplotlib: ``pip install matplotlib``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import tyro
from tyro.conf import Positional

from agentgym.config import cli_registry


@dataclass
class Args:
    """Plot held-out greedy success curves of bench/learning.py runs."""

    files: Positional[list[str]]
    """JSON files written by ``bench/learning.py --json-out``."""
    out: str = "docs/learning.png"
    """PNG to write."""
    title: str = "Held-out greedy success during GRPO"
    """Title of the figure."""


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv, description=__doc__, registry=cli_registry())
    if not args.files:
        sys.stderr.write("give at least one JSON file written by bench/learning.py --json-out\n")
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("plotting needs matplotlib: pip install matplotlib\n")
        return 2
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for path in args.files:
        with open(path) as f:
            runs = json.load(f)
        for name, res in runs.items():
            steps, rates = zip(*res["curve"], strict=True)
            label = f"{name} (seed {res['config']['seed']})"
            ax.plot(steps, rates, marker="o", label=label)
    ax.axhline(0.8, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("greedy success, held-out tasks")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(args.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
