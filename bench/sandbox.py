"""Sandbox latency and throughput, as ratios against baselines measured in the same run.

Run: .venv/bin/python bench/sandbox.py [--n 40] [--threads 2]

Prints a table (p50/p95 latency in ms, throughput in runs/s) for a trivial
snippet and a small unit-test run, per backend and for the warm pool, then the
ratios the sandbox is held to, each against a baseline timed in this run:

Ratios come from calls alternated side by side, so a change of load hits both.

- ``oneshot_vs_gem``: one-shot bwrap sandbox (``get_sandbox("bwrap")``) p50 over
  GEM's ``run_python`` approach (``bwrap ... python -c`` per call, with the same
  mounts); target <= 1.0.
- ``pool_vs_fork``: a warm-pool call p50 over a bare ``fork`` + ``_exit`` +
  ``waitpid`` of this (the agent's) process; target <= 1.5.
- ``grading_new_vs_old``: grading a 10-test task with ``run_tests`` (grader out of
  the code's reach) p50 over the old in-process path (the submission's process
  forks per test and reports itself), both on the same warm worker; target <= 1.5.
- ``pool_p50_speedup``: plain ``python -c`` p50 over the pool's (trivial snippet).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import tyro

from agentgym.config import cli_registry
from agentgym.sandbox import SandboxPool, available_backends, get_sandbox

SNIPPET = "print(1)"
SOLUTION = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
FIBS = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
TESTS = {f"t{i}": f"assert fib({i}) == {FIBS[i]}" for i in range(10)}
BASELINE_TESTS = SOLUTION + "\n".join(TESTS.values()) + "\nprint('ok')"

# The old grading path, as the agent ran it before the grader moved out of the
# submission's reach: exec the solution, fork per test, exec the test in the
# solution's globals, the fork reports its own verdict on a pipe.
OLD_PATH = """
import json, os, sys, traceback
g = {"__name__": "__main__"}
exec(compile(SOLUTION, "<solution>", "exec"), g)
verdicts = []
for name, src in TESTS.items():
    sys.stdout.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            exec(compile(src, f"<test:{name}>", "exec"), g)
            msg = {"passed": True}
        except BaseException as e:
            msg = {"passed": False, "error": "".join(traceback.format_exception(e))}
        os.write(w, json.dumps(msg).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    verdicts.append(json.loads(data)["passed"])
assert all(verdicts), verdicts
"""


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(call: Callable[[int], object], n: int, threads: int, warmup: int = 3) -> tuple:
    """p50 ms, p95 ms (one caller), throughput runs/s (``threads`` callers)."""
    for _ in range(warmup):
        call(0)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        call(0)
        lat.append((time.perf_counter() - t) * 1000)
    per = max(1, n // threads)
    t0 = time.perf_counter()
    ts = [
        threading.Thread(target=lambda i=i: [call(i) for _ in range(per)]) for i in range(threads)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    thr = per * threads / (time.perf_counter() - t0)
    return statistics.median(lat), pct(lat, 0.95), thr


def side_by_side(a: Callable[[], object], b: Callable[[], object], n: int) -> tuple:
    """p50 ms of ``a`` and of ``b``, calls alternated so that a load change hits both."""
    for _ in range(3):
        a(), b()
    ta, tb = [], []
    for _ in range(n):
        t = time.perf_counter()
        a()
        ta.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        b()
        tb.append((time.perf_counter() - t) * 1000)
    return statistics.median(ta), statistics.median(tb)


def check(r) -> None:
    if not r.ok:
        raise RuntimeError(f"bench run failed: {r}")


def check_report(rep) -> None:
    if not rep.all_passed:
        raise RuntimeError(f"bench grading failed: {rep}")


def bench_backend(backend: str, n: int, threads: int) -> list[tuple]:
    """Rows for one backend's one-shot path: one sandbox per calling thread."""
    boxes = [get_sandbox(backend, wall_time_s=10) for _ in range(threads)]
    try:
        snip = measure(lambda i: check(boxes[i].run_python(SNIPPET)), n, threads)
        tests = measure(lambda i: check_report(boxes[i].run_tests(SOLUTION, TESTS)), n, threads)
    finally:
        for b in boxes:
            b.close()
    return [(backend, "snippet", *snip), (backend, "unit tests", *tests)]


def gem_style(n: int) -> tuple | None:
    """GEM's approach, a fresh ``bwrap ... python -c CODE`` per call (same mounts as ours),
    side by side with our one-shot bwrap sandbox: ``(gem p50, ours p50)``."""
    if "bwrap" not in available_backends():
        return None
    from agentgym.sandbox._host import HostWorkspace
    from agentgym.sandbox.bwrap import bwrap_argv

    ws = HostWorkspace(-1, 64)
    argv = bwrap_argv(ws) + ["--", sys.executable, "-c", SNIPPET]
    box = get_sandbox("bwrap", wall_time_s=10)
    try:

        def run() -> None:
            p = subprocess.run(argv, capture_output=True, timeout=30, check=True)
            assert p.stdout == b"1\n", p

        return side_by_side(run, lambda: check(box.run_python(SNIPPET)), n)
    finally:
        box.close()
        ws.close()


def bare_fork(_: int) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


@dataclass
class Args:
    """Sandbox latency and throughput against same-run baselines."""

    n: int = 40
    """Timed runs per row."""
    threads: int = 2
    """Concurrent callers for the throughput column."""


def main(argv: list[str] | None = None) -> None:
    args = tyro.cli(Args, args=argv, description=__doc__, registry=cli_registry())
    warnings.simplefilter("ignore", UserWarning)
    n, threads = args.n, args.threads
    rows = []

    def base_snip(_: int) -> None:
        p = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, check=True)
        assert p.stdout == b"1\n"

    def base_tests(_: int) -> None:
        subprocess.run([sys.executable, "-c", BASELINE_TESTS], capture_output=True, check=True)

    rows.append(("baseline python -c", "snippet", *measure(base_snip, n, threads)))
    rows.append(("baseline python -c", "unit tests", *measure(base_tests, n, threads)))
    gem = gem_style(n)
    for backend in available_backends():
        rows += bench_backend(backend, n, threads)

    old = f"SOLUTION = {SOLUTION!r}\nTESTS = {TESTS!r}\n{OLD_PATH}"
    with SandboxPool("auto", size=threads, wall_time_s=10) as pool:
        name = f"pool ({pool.backend}, {pool.size} workers)"
        snip = measure(lambda i: check(pool.run_python(SNIPPET)), 4 * n, threads)
        rows.append((name, "snippet", *snip))
        pool_p50, fork_p50 = side_by_side(
            lambda: check(pool.run_python(SNIPPET)), lambda: bare_fork(0), 4 * n
        )
        new_grade = measure(lambda i: check_report(pool.run_tests(SOLUTION, TESTS)), n, threads)
        old_grade = measure(lambda i: check(pool.run_python(old)), n, threads)
        rows.append((name, "grade 10 tests, old path", *old_grade))
        rows.append((name, "grade 10 tests, new path", *new_grade))
        old_p50, new_p50 = side_by_side(
            lambda: check(pool.run_python(old)),
            lambda: check_report(pool.run_tests(SOLUTION, TESTS)),
            n,
        )
    fork_alone = measure(bare_fork, 4 * n, 1)[0]

    print(f"{'backend':34s} {'workload':25s} {'p50 ms':>8s} {'p95 ms':>8s} {'runs/s':>8s}")
    for name, work, p50, p95, thr in rows:
        print(f"{name:34s} {work:25s} {p50:8.1f} {p95:8.1f} {thr:8.1f}")
    print("side by side (calls alternated), p50 ms:")
    if gem is not None:
        print(f"  GEM-style bwrap python -c {gem[0]:.1f}, one-shot bwrap sandbox {gem[1]:.1f}")
    print(f"  bare fork of this process {fork_p50:.1f}, warm pool call {pool_p50:.1f}")
    print(f"  grading 10 tests: old path {old_p50:.1f}, new path {new_p50:.1f}")
    print(f"bare fork alone (back to back, no pool calls between): {fork_alone:.1f} ms")
    if gem is not None:
        print(f"oneshot_vs_gem={gem[1] / gem[0]:.2f}  (target <= 1.0)")
    print(f"pool_vs_fork={pool_p50 / fork_p50:.2f}  (target <= 1.5)")
    print(f"pool_vs_fork_alone={snip[0] / fork_alone:.2f}  (pool alone over fork alone)")
    print(f"grading_new_vs_old={new_p50 / old_p50:.2f}  (target <= 1.5)")
    print(f"pool_p50_speedup={rows[0][2] / snip[0]:.1f}")


if __name__ == "__main__":
    main()
