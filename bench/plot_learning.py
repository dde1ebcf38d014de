"""Plot held-out greedy success curves from ``bench/learning.py --json-out`` files.

Run: ``python bench/plot_learning.py runs/tools.json runs/random-maps.json --out docs/learning.png``
(needs matplotlib: ``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", help="JSON files written by bench/learning.py")
    parser.add_argument("--out", default="docs/learning.png", help="PNG to write")
    parser.add_argument("--title", default="Held-out greedy success during GRPO")
    args = parser.parse_args(argv)
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
