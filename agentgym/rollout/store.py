"""Trajectories on disk the moment they end, and resuming a run from its file.

:class:`TrajectoryFile` appends one JSON line per finished trajectory and flushes it at
once, so a trajectory survives the process being killed (SIGKILL included) as soon as
``write`` returns; ``os.fsync`` runs every ``fsync_every`` lines and on close, which
bounds what a machine crash (not a process kill) can take.

Resuming: with ``resume=True`` the file is read first. A last line cut short by a
kill (no newline at its end, or not valid JSON) is a *torn* line: it is dropped with a
warning and the file is truncated to the last whole line before anything is
appended. A damaged line anywhere else raises, since that is not what a kill leaves.
The collector then skips every (task, sample) the file holds and runs the rest.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import IO, Any

from agentgym.errors import AgentGymError, ConfigError
from agentgym.trajectory import Trajectory

__all__ = ["TrajectoryFile", "read_resumable", "trajectory_key"]

Key = tuple[str, int, int | None, int]


def trajectory_key(t: Trajectory) -> Key:
    """What identifies one episode of a run: (env id, task index, seed, sample index)."""
    return (t.env_id, int(t.metadata.get("task_index", -1)), t.seed, int(t.sample_index))


def read_resumable(path: str | Path) -> tuple[list[Trajectory], int]:
    """Trajectories of a file that a run may have been killed while writing.

    Returns the trajectories of every whole line and the byte length of those lines
    (where the file should be cut). A torn last line is dropped with a
    ``RuntimeWarning``.

    Raises:
        AgentGymError: a line other than the last is not a trajectory.
    """
    data = Path(path).read_bytes()
    out: list[Trajectory] = []
    good = 0
    pos = 0
    lineno = 0
    while pos < len(data):
        lineno += 1
        end = data.find(b"\n", pos)
        last = end == -1 or end == len(data) - 1
        chunk = data[pos:] if end == -1 else data[pos:end]
        try:
            if end == -1:
                raise ValueError("no newline at the end")
            if chunk.strip():
                out.append(Trajectory.from_dict(json.loads(chunk)))
        except (ValueError, TypeError, KeyError, AgentGymError) as e:
            if not last:
                raise AgentGymError(
                    f"{path}:{lineno}: not a trajectory line ({e}); only the last line of a "
                    "killed run may be damaged. Fix or remove that line, or collect to a new file"
                ) from e
            warnings.warn(
                f"{path}:{lineno}: dropped a torn last line ({len(chunk)} bytes: {e}); "
                "its episode will be collected again",
                RuntimeWarning,
                stacklevel=2,
            )
            break
        pos = len(data) if end == -1 else end + 1
        good = pos
    return out, good


class TrajectoryFile:
    """An append-only JSONL file of trajectories (see the module docstring).

    Args:
        out: a path, or an open text file (then it is neither fsync-ed nor closed here,
            and ``resume`` is not possible).
        resume: keep what the file holds (see :attr:`existing`) and append; otherwise the
            file is truncated.
        fsync_every: ``os.fsync`` after this many lines (and on close).

    Attributes:
        existing: trajectories the file held when opened with ``resume=True``.
    """

    def __init__(
        self, out: str | Path | IO[str], resume: bool = False, fsync_every: int = 32
    ) -> None:
        if fsync_every < 1:
            raise ConfigError(f"fsync_every must be >= 1, got {fsync_every}")
        self.existing: list[Trajectory] = []
        self._fsync_every = fsync_every
        self._unsynced = 0
        if hasattr(out, "write"):
            if resume:
                raise ConfigError("resume needs a file path, not an open file")
            self._handle: IO[str] = out  # type: ignore[assignment]
            self._own = False
            return
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume and path.exists():
            self.existing, good = read_resumable(path)
            with path.open("r+b") as f:  # cut a torn tail before appending after it
                f.truncate(good)
            self._handle = path.open("a", encoding="utf-8")
        else:
            self._handle = path.open("w", encoding="utf-8")
        self._own = True

    def write(self, traj: Trajectory) -> None:
        """Append one trajectory and flush it to the OS (it survives a kill from here on)."""
        self._handle.write(traj.to_json() + "\n")
        self._handle.flush()
        self._unsynced += 1
        if self._unsynced >= self._fsync_every:
            self.sync()

    def sync(self) -> None:
        """``fsync`` what was written (a no-op for files opened by the caller)."""
        if self._own and self._unsynced:
            os.fsync(self._handle.fileno())
        self._unsynced = 0

    def close(self) -> None:
        """Sync and close (files opened by the caller are only flushed)."""
        if self._own:
            self.sync()
            self._handle.close()
        else:
            self._handle.flush()

    def __enter__(self) -> TrajectoryFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
