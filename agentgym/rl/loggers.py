"""Metric sinks: ``metrics.jsonl`` always, TensorBoard and Weights & Biases on request.

A logger takes one dict of metrics per step (names namespaced ``rollout/…``,
``reward/…``, ``loss/…``, ``kl/…``, ``logprob/…``, ``perf/…``). Add one with
``LOGGERS.register(name, cls)``; ``TrainConfig.loggers`` names the extra ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from agentgym.catalog import Registry
from agentgym.errors import require

__all__ = ["MetricsLogger", "LOGGERS", "JsonlLogger", "TensorBoardLogger", "WandbLogger"]


class MetricsLogger(Protocol):
    """Receives each step's metrics."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record ``metrics`` of step ``step``."""
        ...

    def close(self) -> None:
        """Flush and release."""
        ...


class JsonlLogger:
    """One JSON line per record in ``path``; resumes by truncating at a byte offset.

    Args:
        path: the JSONL file.
        offset: None starts a new file; an int keeps the first ``offset`` bytes (a
            resumed run drops whatever was logged after its checkpoint).
    """

    def __init__(self, path: str | Path, offset: int | None = None) -> None:
        self.path = Path(path)
        if offset is None:
            self._f = self.path.open("w")
        else:
            self._f = self.path.open("r+")
            self._f.truncate(offset)
            self._f.seek(offset)

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Append one line (``step`` is already in ``metrics``)."""
        self._f.write(json.dumps(metrics) + "\n")
        self._f.flush()

    def tell(self) -> int:
        """Byte offset after the last line written."""
        return self._f.tell()

    def close(self) -> None:
        """Close the file."""
        self._f.close()


class TensorBoardLogger:
    """Scalars to ``out_dir/tensorboard`` (``pip install agentgym[train]``)."""

    def __init__(self, out_dir: str | Path, config: dict[str, Any]) -> None:
        require("tensorboard", "train", "the TensorBoard logger")
        from torch.utils.tensorboard import SummaryWriter

        self._w = SummaryWriter(str(Path(out_dir) / "tensorboard"))

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Add each metric as a scalar at ``step``."""
        for k, v in metrics.items():
            if k != "step":
                self._w.add_scalar(k, v, step)

    def close(self) -> None:
        """Flush to disk."""
        self._w.close()


class WandbLogger:
    """A Weights & Biases run (``pip install agentgym[wandb]``).

    Set ``WANDB_MODE=offline`` to keep it local.
    """

    def __init__(self, out_dir: str | Path, config: dict[str, Any]) -> None:
        wandb = require("wandb", "wandb", "the Weights & Biases logger")
        self._run = wandb.init(dir=str(out_dir), config=config, resume="allow")

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Log at ``step``."""
        self._run.log({k: v for k, v in metrics.items() if k != "step"}, step=step)

    def close(self) -> None:
        """Finish the run."""
        self._run.finish()


#: Extra loggers by name: ``cls(out_dir, config_dict)``.
LOGGERS: Registry[Any] = Registry("metrics logger")
LOGGERS.register("tensorboard", TensorBoardLogger)
LOGGERS.register("wandb", WandbLogger)
