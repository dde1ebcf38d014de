"""Training curves as PNG files, from a run's ``metrics.jsonl`` (matplotlib).

``agentgym plot RUN_DIR`` calls :func:`plot_run`: one PNG per curve that the run
logged (reward, success, KL, entropy, sampler-vs-trainer |delta logprob|, tokens/s),
written to ``RUN_DIR/plots``.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentgym.errors import ConfigError, require

__all__ = ["CURVES", "read_metrics", "plot_run"]

#: File stem -> (title, metric names drawn on it).
CURVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "reward": ("mean return", ("reward/total_mean", "reward/outcome_mean")),
    "success": ("success rate", ("reward/success_rate", "eval/success_rate")),
    "kl": ("KL to the reference", ("kl/mean", "kl/sequence_mean", "loss/approx_kl")),
    "entropy": ("policy entropy (nats/token)", ("policy/entropy",)),
    "logprob_delta": (
        "|logprob trainer - sampler|",
        ("logprob/abs_diff_mean", "logprob/abs_diff_max"),
    ),
    "tokens_per_s": ("update throughput (tokens/s)", ("perf/tokens_per_s",)),
}


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The records of a ``metrics.jsonl`` file (torn last lines are skipped)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write one PNG per curve with data; return their paths.

    Raises:
        ConfigError: no ``metrics.jsonl`` in ``run_dir``.
    """
    require("matplotlib", "train", "agentgym plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = Path(run_dir) / "metrics.jsonl"
    if not metrics.exists():
        raise ConfigError(f"no metrics.jsonl in {run_dir}: pass a run directory of agentgym train")
    rows = read_metrics(metrics)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (title, names) in CURVES.items():
        series = {n: [(r["step"], r[n]) for r in rows if n in r and "step" in r] for n in names}
        series = {n: pts for n, pts in series.items() if pts}
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, pts in series.items():
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, label=name)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
