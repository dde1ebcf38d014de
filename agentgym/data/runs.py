"""Read what rollouts and training runs wrote: a JSONL file, or a run directory.

A training run directory (``agentgym train --out-dir``) holds ``metrics.jsonl``
(one JSON object per step) and ``rollouts/stepNNNNN.jsonl`` (that step's
trajectories). :func:`load_source` reads either form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.errors import ConfigError
from agentgym.trajectory import Trajectory, iter_jsonl

__all__ = ["Source", "load_source"]

_STEP = re.compile(r"step(\d+)\.jsonl$")


@dataclass
class Source:
    """Trajectories (with the training step each came from, if any) and a run's metrics."""

    path: Path
    trajectories: list[Trajectory] = field(default_factory=list)
    steps: list[int | None] = field(default_factory=list)
    """``steps[i]`` is the 1-based training step of ``trajectories[i]``, None for a file."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """The rows of ``metrics.jsonl`` (empty for a plain file)."""

    @property
    def is_run(self) -> bool:
        """Whether this came from a training run directory."""
        return self.path.is_dir()


def load_source(path: str | Path) -> Source:
    """Read a trajectories JSONL file or a training run directory.

    Raises:
        ConfigError: the path does not exist, or a directory has neither
            ``metrics.jsonl`` nor ``rollouts/step*.jsonl``.
    """
    p = Path(path)
    if p.is_file():
        trajs = list(iter_jsonl(p))
        return Source(p, trajs, [None] * len(trajs))
    if not p.is_dir():
        raise ConfigError(f"{p} does not exist; pass a trajectories .jsonl file or a run directory")
    files = sorted((p / "rollouts").glob("step*.jsonl"))
    metrics_file = p / "metrics.jsonl"
    if not files and not metrics_file.is_file():
        raise ConfigError(
            f"{p} is not a training run: it has neither metrics.jsonl nor rollouts/step*.jsonl"
        )
    src = Source(p)
    for f in files:
        m = _STEP.search(f.name)
        step = int(m.group(1)) + 1 if m else None  # files count from 0, metrics from 1
        for t in iter_jsonl(f):
            src.trajectories.append(t)
            src.steps.append(step)
    if metrics_file.is_file():
        for line in metrics_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                src.metrics.append(json.loads(line))
    return src
