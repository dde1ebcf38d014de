"""Fixtures for the sandbox suite: one sandbox per backend, skip locally / fail in CI."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentgym.sandbox import SandboxPool, backend_status, get_sandbox
from agentgym.sandbox.types import Limits

BACKENDS = ["bwrap", "docker", "local", "pool"]
TEST_LIMITS = dict(
    wall_time_s=4, memory_mb=256, max_processes=32, file_size_mb=8, disk_mb=32, output_bytes=4096
)


def require(backend: str) -> None:
    """Skip when the backend cannot work here; in CI (CI=true) fail instead."""
    if backend == "pool":
        return
    reason = backend_status()[backend]
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"sandbox backend {backend!r} is required in CI but unavailable: {reason}")
    pytest.skip(f"sandbox backend {backend!r} unavailable: {reason}")


def make(backend: str, **limits):
    lim = {**TEST_LIMITS, **limits}
    require(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # local's "not isolation" warning
        if backend == "pool":
            return SandboxPool("auto", size=2, **lim)
        return get_sandbox(backend, **lim)


@pytest.fixture(scope="module", params=BACKENDS)
def sb(request) -> Iterator:
    box = make(request.param)
    box.kind = request.param
    yield box
    box.close()


def uids_of(box) -> set[int]:
    """The unprivileged uids a sandbox (or every worker of a pool) runs code as."""
    if isinstance(box, SandboxPool):
        return {w.uid for w in list(box._all) if getattr(w, "uid", -1) > 0}
    return {box.uid} if getattr(box, "uid", -1) > 0 else set()


def host_processes(uids: set[int]) -> list[int]:
    """Host pids running as any of ``uids`` (containers' processes are visible too)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            status = (p / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) in uids:
                out.append(int(p.name))
    return out


def isolating(box) -> bool:
    """False for the local backend when not root (no uid switch, no netns)."""
    return box.kind != "local" or os.geteuid() == 0


def limits(**kw) -> Limits:
    return Limits(**{**TEST_LIMITS, **kw})
