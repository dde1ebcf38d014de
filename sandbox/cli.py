"""``agentgym sandbox`` commands: check, run, build-image.

The lead's ``agentgym/cli.py`` calls :func:`add_subparser`; ``python -m
agentgym.sandbox.cli ...`` works on its own too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError, SandboxUnavailable

__all__ = ["add_subparser", "main"]


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sandbox`` command (with ``check``, ``run``, ``build-image``)."""
    p = subparsers.add_parser(
        "sandbox",
        help="code sandboxes: check backends, run a file, build the docker image",
        description="Code execution sandboxes (bwrap, docker, local) for agentgym.",
    )
    sub = p.add_subparsers(dest="sandbox_command", metavar="{check,run,build-image}")
    sub.required = True

    c = sub.add_parser(
        "check",
        help="report which backends work here, and run the reward-hack battery on each",
    )
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument(
        "--no-battery", action="store_true", help="only report the backends; skip the battery"
    )
    c.add_argument(
        "--backend",
        action="append",
        choices=["bwrap", "docker", "local"],
        help="run the battery on this backend only (repeatable; default: every working one)",
    )
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", help="run a Python file in a sandbox")
    r.add_argument("file", type=Path, help="the Python file to run")
    r.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "bwrap", "docker", "local"],
        help="sandbox backend (default: auto = bwrap, then docker, then local)",
    )
    r.add_argument("--stdin", type=Path, default=None, help="file fed to the program's stdin")
    r.add_argument("--wall-time", type=float, default=10.0, help="wall-clock seconds (10)")
    r.add_argument("--cpu-time", type=float, default=None, help="CPU seconds (= wall time)")
    r.add_argument("--memory-mb", type=int, default=512, help="address space per process (512)")
    r.add_argument("--max-processes", type=int, default=64, help="processes/threads (64)")
    r.add_argument("--file-size-mb", type=int, default=64, help="largest file written (64)")
    r.add_argument("--disk-mb", type=int, default=256, help="workspace and /tmp size (256)")
    r.add_argument("--output-bytes", type=int, default=65536, help="stdout/stderr kept (65536)")
    r.add_argument("--network", action="store_true", help="allow network access (off)")
    r.add_argument("--json", action="store_true", help="print the ExecResult as JSON")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "build-image",
        help="build the docker backend's image locally (debootstrap + docker import)",
        description="Build the docker sandbox image from a Debian mirror with debootstrap "
        "and `docker import`; no registry needed. Needs root. Skips if it exists.",
    )
    b.add_argument("--tag", default=None, help="image name (default agentgym-sandbox:bookworm)")
    b.add_argument("--suite", default="bookworm", help="Debian suite (bookworm)")
    b.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror")
    b.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    b.set_defaults(func=cmd_build_image)
    return p


def cmd_check(args: argparse.Namespace) -> int:
    """Print each backend's status and the battery's result per hack class.

    Exit 0 when an isolating backend works and the grader held against every
    hack on every backend tried; 1 otherwise.
    """
    from agentgym.sandbox import backend_status, resolve_backend

    status = backend_status()
    ok = status["bwrap"] is None or status["docker"] is None
    battery: dict[str, dict[str, dict[str, Any]]] = {}
    if not args.no_battery:
        for name in args.backend or [b for b, why in status.items() if why is None]:
            battery[name] = _battery(name)
    broken = any(c["broken"] for per in battery.values() for c in per.values())
    if args.json:
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
                verdict = f"held ({c['cases']} cases)" if not bad else f"BROKEN by {'; '.join(bad)}"
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


def cmd_run(args: argparse.Namespace) -> int:
    """Run a file; print its output; exit with its exit code."""
    from agentgym.sandbox import get_sandbox

    code = args.file.read_text()
    stdin = args.stdin.read_text() if args.stdin else None
    limits = dict(
        wall_time_s=args.wall_time,
        cpu_time_s=args.cpu_time,
        memory_mb=args.memory_mb,
        max_processes=args.max_processes,
        file_size_mb=args.file_size_mb,
        disk_mb=args.disk_mb,
        output_bytes=args.output_bytes,
        network=args.network,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with get_sandbox(args.backend, **limits) as sb:
            r = sb.run_python(code, stdin=stdin)
    if args.json:
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


def cmd_build_image(args: argparse.Namespace) -> int:
    """Build (or confirm) the docker image."""
    from agentgym.sandbox.docker import DEFAULT_IMAGE
    from agentgym.sandbox.image import build_image

    what = build_image(
        args.tag or DEFAULT_IMAGE,
        suite=args.suite,
        mirror=args.mirror,
        force=args.force,
        say=lambda s: print(f"build-image: {s}", flush=True),
    )
    print(f"build-image: {what}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m agentgym.sandbox.cli``."""
    parser = argparse.ArgumentParser(prog="agentgym")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SandboxUnavailable as e:
        print(f"sandbox unavailable: {e}", file=sys.stderr)
        return 3
    except AgentGymError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
