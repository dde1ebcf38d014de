"""Data types shared by every sandbox backend: limits, results and the protocol."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentgym.errors import ConfigError

__all__ = ["Limits", "ExecResult", "TestOutcome", "TestReport", "Sandbox"]

TRUNCATION_MARKER = "\n...[agentgym: output truncated, {n} more bytes dropped]\n"


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to every run in a sandbox.

    Example:
        >>> Limits(wall_time_s=5, memory_mb=256).cpu_time
        5.0
    """

    wall_time_s: float = 10.0
    """Wall-clock seconds before the run is killed (``ExecResult.timed_out``)."""
    cpu_time_s: float | None = None
    """CPU seconds (all threads); ``None`` means the same as ``wall_time_s``."""
    memory_mb: int = 512
    """Address-space limit per process, in MiB (``ExecResult.oom`` on failure)."""
    max_processes: int = 64
    """Processes and threads the run may have at once (fork bombs stop here)."""
    file_size_mb: int = 64
    """Largest single file the run may write, in MiB."""
    disk_mb: int = 256
    """Size of the workspace and of ``/tmp``, in MiB; fixed when the sandbox is created."""
    output_bytes: int = 65536
    """Bytes kept of stdout and of stderr each; the rest is dropped with a marker."""
    network: bool = False
    """Whether runs may use the network; off by default, fixed when the sandbox is created."""

    def __post_init__(self) -> None:
        for name in ("wall_time_s", "memory_mb", "max_processes", "file_size_mb", "disk_mb"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"Limits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.cpu_time_s is not None and self.cpu_time_s <= 0:
            raise ConfigError(f"Limits.cpu_time_s must be > 0 or None, got {self.cpu_time_s!r}")
        if self.output_bytes < 0:
            raise ConfigError(f"Limits.output_bytes must be >= 0, got {self.output_bytes!r}")

    @property
    def cpu_time(self) -> float:
        """CPU seconds actually applied (``cpu_time_s`` or the wall time)."""
        return float(self.cpu_time_s if self.cpu_time_s is not None else self.wall_time_s)

    @classmethod
    def from_kwargs(cls, base: Limits | None = None, **kwargs: Any) -> Limits:
        """Build limits from keyword arguments, failing loudly on unknown names.

        Args:
            base: Limits to start from (defaults when ``None``).
            **kwargs: Field overrides, e.g. ``wall_time_s=5``.

        Raises:
            ConfigError: A keyword is not a ``Limits`` field.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ConfigError(
                f"Unknown sandbox limit(s) {unknown}; valid names are {sorted(names)}."
            )
        return dataclasses.replace(base or cls(), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with ``cpu_time_s`` resolved, as sent to the in-sandbox agent."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # flat: no deepcopy
        d["cpu_time_s"] = self.cpu_time
        return d


@dataclass(frozen=True)
class ExecResult:
    """What one run in a sandbox produced.

    ``exit_code`` follows :mod:`subprocess`: a negative value ``-N`` means the
    process was killed by signal ``N``.
    """

    stdout: str
    """Standard output, decoded as UTF-8 (invalid bytes replaced), maybe truncated."""
    stderr: str
    """Standard error, like ``stdout``."""
    exit_code: int
    """Exit status of the run's main process (negative: killed by that signal)."""
    timed_out: bool = False
    """The wall-time or CPU-time limit was hit and the run was killed."""
    oom: bool = False
    """The run ran out of memory (``MemoryError`` or killed by the OOM killer)."""
    duration_s: float = 0.0
    """Wall-clock seconds the run took inside the sandbox."""
    truncated: bool = False
    """Part of stdout or stderr was dropped (see ``Limits.output_bytes``)."""
    backend: str = ""
    """Name of the backend that ran it."""

    @property
    def ok(self) -> bool:
        """True when the run exited 0 without hitting a limit."""
        return self.exit_code == 0 and not self.timed_out and not self.oom


@dataclass(frozen=True)
class TestOutcome:
    """Result of one named test snippet."""

    __test__ = False  # not a pytest class

    name: str
    passed: bool
    error: str | None = None
    """Trimmed traceback or reason when the test failed."""


@dataclass(frozen=True)
class TestReport:
    """Per-test results of :meth:`Sandbox.run_tests` and the run that produced them."""

    __test__ = False

    outcomes: list[TestOutcome] = field(default_factory=list)
    result: ExecResult | None = None

    @property
    def passed(self) -> int:
        """Number of tests that passed."""
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        """Number of tests run (or that should have run)."""
        return len(self.outcomes)

    @property
    def all_passed(self) -> bool:
        """True when there was at least one test and every test passed."""
        return self.total > 0 and self.passed == self.total


@runtime_checkable
class Sandbox(Protocol):
    r"""A place to run untrusted code. Every backend and the pool implement it.

    Example:
        >>> with get_sandbox("auto", wall_time_s=5) as sb:  # doctest: +SKIP
        ...     sb.run_python("print(1 + 1)").stdout
        '2\\n'
    """

    backend: str

    def run_python(
        self, code: str, *, stdin: str | None = None, limits: Limits | None = None
    ) -> ExecResult:
        """Run Python source as a fresh ``__main__`` in the workspace."""
        ...

    def run_shell(self, command: str, *, limits: Limits | None = None) -> ExecResult:
        """Run a ``/bin/sh -c`` command in the workspace."""
        ...

    def put_file(self, path: str, data: bytes | str) -> None:
        """Write a file at ``path`` relative to the workspace."""
        ...

    def get_file(self, path: str) -> bytes:
        """Read a file at ``path`` relative to the workspace."""
        ...

    def run_tests(
        self,
        code: str,
        tests: Mapping[str, str],
        *,
        limits: Limits | None = None,
        setup: str = "",
        live_objects: bool = False,
    ) -> TestReport:
        """Grade ``code`` with test snippets run by a grader the code cannot reach."""
        ...

    def close(self) -> None:
        """Release the sandbox; later calls raise."""
        ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...
