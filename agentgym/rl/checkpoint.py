"""Checkpoints of a training run, written atomically, and finding the last one.

A checkpoint is a directory ``RUN/checkpoints/step-NNNNNN`` holding:

- ``trainer.pt``: the trainable weights (the whole model, or the LoRA adapter),
  the optimizer and the scheduler states;
- ``adapter/``: with LoRA, the adapter in peft's format (loadable on its own);
- ``rng.pt``: the Python, NumPy and torch (CPU and CUDA) RNG states (of rank 0 when
  several processes train; ``rng-rank{N}.pt`` holds rank N's, so each resumes its own);
- ``state.json``: the step, the byte offset of ``metrics.jsonl`` after that step's
  line, and the loop's counters (e.g. how many sampling calls the collector made).

Every checkpoint is written to a hidden temporary directory first and renamed into
place, so a run killed at any point (SIGKILL included) leaves either the complete
checkpoint or none; :func:`latest_checkpoint` never sees a half-written one.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.errors import ConfigError, require

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "rng_state", "set_rng_state"]

_NAME = re.compile(r"^step-(\d{6,})$")


def rng_state() -> dict[str, Any]:
    """The process's Python, NumPy and torch RNG states."""
    torch = require("torch", "hf", "checkpoints")
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (resuming continues the same streams)."""
    torch = require("torch", "hf", "checkpoints")
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    trainer: Any,
    state: dict[str, Any],
    keep: int = 2,
    rng_states: list[dict[str, Any]] | None = None,
) -> Path:
    """Write checkpoint ``step`` of ``trainer`` atomically; keep the ``keep`` newest.

    Args:
        run_dir: the run's output directory.
        step: steps completed.
        trainer: a :class:`~agentgym.rl.trainer.Trainer`.
        state: JSON-able loop state (metrics offset, counters), stored in state.json.
        keep: how many checkpoints to keep.
        rng_states: every process's :func:`rng_state`, by rank (default: this process's).

    Returns:
        The checkpoint's directory.
    """
    torch = require("torch", "hf", "checkpoints")
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}-{os.getpid()}"
    for stale in root.glob(".tmp-step-*"):  # left by a run killed mid-write (one writer)
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    torch.save(trainer.state_dict(), tmp / "trainer.pt")
    for rank, rng in enumerate(rng_states or [rng_state()]):
        torch.save(rng, tmp / ("rng.pt" if rank == 0 else f"rng-rank{rank}.pt"))
    if getattr(trainer, "peft_model", None) is not None:
        trainer.peft_model.save_pretrained(tmp / "adapter")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=2))
    for f in tmp.iterdir():  # on disk before the rename makes it visible
        if f.is_file():
            with f.open("rb") as h:
                os.fsync(h.fileno())
    if final.exists():  # the same step again (a resumed run): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in _checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoints(root: Path) -> list[Path]:
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None when it has none."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = _checkpoints(root)
    return found[-1] if found else None


def load_checkpoint(path: str | Path, trainer: Any, rank: int = 0) -> dict[str, Any]:
    """Restore ``trainer`` and process ``rank``'s RNG states; return the state.json.

    A rank the checkpoint has no RNG file for (the run had fewer processes) takes rank
    0's: the run goes on, but not the same streams as an uninterrupted one.
    """
    torch = require("torch", "hf", "checkpoints")
    path = Path(path)
    if not (path / "state.json").exists():
        raise ConfigError(f"{path} is not a checkpoint (no state.json); pass a run directory")
    trainer.load_state_dict(torch.load(path / "trainer.pt", map_location="cpu", weights_only=False))
    own = path / f"rng-rank{rank}.pt"
    rng_file = own if rank > 0 and own.exists() else path / "rng.pt"
    set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((path / "state.json").read_text())
