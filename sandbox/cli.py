"""``agentgym sandbox`` commands: check, run, build-image.

Each subcommand is a dataclass whose fields are its flags, parsed with tyro like
every other ``agentgym`` command (``agentgym sandbox run --help``). ``agentgym
sandbox ...`` comes here through :func:`main`; ``python -m agentgym.sandbox.cli
check`` works on its own too.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tyro.conf import Positional

from agentgym.errors import AgentGymError, SandboxUnavailable

__all__ = ["Check", "Run", "BuildImage", "SANDBOX_COMMANDS", "main"]


@dataclass
class Check:
    """Report which backends work here, and run the reward-hack battery on each.

    Exit 0 when an isolating backend (bwrap or docker) works and the grader held against
    every hack on every backend tried; 1 otherwise.
    """

    json: bool = False
    """Print the report as JSON."""
    battery: bool = True
    """Run the reward-hack battery (--no-battery: only report the backends)."""
    backend: list[Literal["bwrap", "docker", "local"]] = field(default_factory=list)
    """Run the battery on these backends only (default: every working one)."""

    def run(self) -> int:
        """Print each backend's status and the battery's result per hack class."""
        from agentgym.sandbox import backend_status, resolve_backend

        status = backend_status()
        ok = status["bwrap"] is None or status["docker"] is None
        battery: dict[str, dict[str, dict[str, Any]]] = {}
        if self.battery:
            names: list[str] = list(self.backend)
            for name in names or [b for b, why in status.items() if why is None]:
                battery[name] = _battery(name)
        broken = any(c["broken"] for per in battery.values() for c in per.values())
        if self.json:
            print(json.dumps({"backends": status, "battery": battery}, indent=2))
        else:
            for name, why in status.items():
                note = " (no isolation: development only)" if name == "local" else ""
                print(f"{name:7s} {'ok' if why is None else 'unavailable'}{note}")
                if why:
                    print(f"        {why}")
            print(f"auto -> {resolve_backend('auto')}")
            for name, per in battery.items():
                for kind, c in per.items():
                    bad = c["broken"]
                    verdict = (
                        f"held ({c['cases']} cases)" if not bad else f"BROKEN by {'; '.join(bad)}"
                    )
                    print(f"hack battery  {name:7s} {kind:16s} {verdict}")
        return 0 if ok and not broken else 1


def _battery(backend: str) -> dict[str, dict[str, Any]]:
    """Hack class -> its number of cases and the hacks that scored (none: the grader held)."""
    from agentgym.sandbox import SandboxPool
    from agentgym.sandbox.hacks import run_battery

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with SandboxPool(backend, size=1, wall_time_s=5, memory_mb=512) as pool:
            results = run_battery(pool)
    per: dict[str, dict[str, Any]] = {}
    for r in results:
        c = per.setdefault(r.hack.kind, {"cases": 0, "broken": []})
        c["cases"] += 1
        if not r.held:
            c["broken"].append(f"{r.hack.name} ({r.report.passed}/{r.report.total})")
    return per


@dataclass
class Run:
    """Run a Python file in a sandbox; print its output; exit with its exit code."""

    file: Positional[Path]
    """The Python file to run."""
    backend: Literal["auto", "bwrap", "docker", "local"] = "auto"
    """Sandbox backend (auto = bwrap, then docker, then local)."""
    stdin: Path | None = None
    """File fed to the program's stdin."""
    wall_time: float = 10.0
    """Wall-clock seconds."""
    cpu_time: float | None = None
    """CPU seconds (default: the wall time)."""
    memory_mb: int = 512
    """Address space per process, MiB."""
    max_processes: int = 64
    """Processes/threads."""
    file_size_mb: int = 64
    """Largest file written, MiB."""
    disk_mb: int = 256
    """Workspace and /tmp size, MiB."""
    output_bytes: int = 65536
    """Bytes of stdout/stderr kept."""
    network: bool = False
    """Allow network access."""
    json: bool = False
    """Print the ExecResult as JSON."""

    def run(self) -> int:
        """Run the file; exit code 128+N when a signal N ended it."""
        from agentgym.sandbox import get_sandbox

        try:
            code = self.file.read_text()
            stdin = self.stdin.read_text() if self.stdin else None
        except OSError as e:
            raise AgentGymError(f"cannot read {e.filename}: {e.strerror}") from e
        limits = dict(
            wall_time_s=self.wall_time,
            cpu_time_s=self.cpu_time,
            memory_mb=self.memory_mb,
            max_processes=self.max_processes,
            file_size_mb=self.file_size_mb,
            disk_mb=self.disk_mb,
            output_bytes=self.output_bytes,
            network=self.network,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            with get_sandbox(self.backend, **limits) as sb:
                r = sb.run_python(code, stdin=stdin)
        if self.json:
            print(json.dumps(dataclasses.asdict(r), indent=2))
        else:
            sys.stdout.write(r.stdout)
            sys.stderr.write(r.stderr)
            flags = [n for n in ("timed_out", "oom", "truncated") if getattr(r, n)]
            print(
                f"[{r.backend}] exit_code={r.exit_code} duration={r.duration_s:.3f}s "
                + " ".join(flags),
                file=sys.stderr,
            )
        if r.exit_code < 0:
            return 128 - r.exit_code
        return r.exit_code


@dataclass
class BuildImage:
    """Build the docker backend's image from a Debian mirror (debootstrap + docker import).

    No registry needed. Needs root. Skips if the image exists (unless --force).
    """

    tag: str | None = None
    """Image name (default agentgym-sandbox:bookworm)."""
    suite: str = "bookworm"
    """Debian suite."""
    mirror: str = "http://deb.debian.org/debian"
    """Debian mirror."""
    force: bool = False
    """Rebuild even if the image exists."""

    def run(self) -> int:
        """Build (or confirm) the docker image."""
        from agentgym.sandbox.docker import DEFAULT_IMAGE
        from agentgym.sandbox.image import build_image

        what = build_image(
            self.tag or DEFAULT_IMAGE,
            suite=self.suite,
            mirror=self.mirror,
            force=self.force,
            say=lambda s: print(f"build-image: {s}", flush=True),
        )
        print(f"build-image: {what}")
        return 0


#: Subcommand name -> the dataclass its flags fill (each has a ``run() -> int``).
SANDBOX_COMMANDS: dict[str, Callable[..., Any]] = {
    "check": Check,
    "run": Run,
    "build-image": BuildImage,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``agentgym sandbox`` (a leading ``"sandbox"`` in ``argv`` is skipped).

    Exit codes: the subcommand's; 2 for a usage or config error; 3 when the sandbox is
    unavailable.
    """
    import tyro

    from agentgym.config import cli_registry

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        argv = argv[1:]
    command = tyro.extras.subcommand_cli_from_dict(
        SANDBOX_COMMANDS,
        args=argv,
        prog="agentgym sandbox",
        description="Code execution sandboxes (bwrap, docker, local): check the backends "
        "and the grader, run a file, build the docker image.",
        registry=cli_registry(),
    )
    try:
        return int(command.run())
    except SandboxUnavailable as e:
        print(f"sandbox unavailable: {e}", file=sys.stderr)
        return 3
    except AgentGymError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
