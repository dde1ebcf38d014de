"""Sandbox latency and throughput vs. a plain unisolated `python -c` subprocess.

Run: .venv/bin/python bench/sandbox.py [--n 40] [--threads 2]
Prints a table (p50/p95 latency in ms, throughput in runs/s) for a trivial snippet
and a small unit-test run, per backend and for the warm pool, and a last line
`pool_p50_speedup=X` = baseline p50 / pool p50 (trivial snippet), same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import warnings

from agentgym.sandbox import SandboxPool, available_backends, get_sandbox

SNIPPET = "print(sum(range(10)))"
SOLUTION = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
TESTS = {f"t{i}": f"assert fib({i}) == {[0, 1, 1, 2, 3, 5, 8, 13][i]}" for i in range(8)}
BASELINE_TESTS = SOLUTION + "\n".join(TESTS.values()) + "\nprint('ok')"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(call, n: int, threads: int, warmup: int = 3) -> tuple[float, float, float]:
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


def check(r) -> None:
    if not r.ok:
        raise RuntimeError(f"bench run failed: {r}")


def bench_backend(backend: str, n: int, threads: int) -> list[tuple]:
    """Rows for one backend: one sandbox per calling thread."""
    boxes = [get_sandbox(backend, wall_time_s=10) for _ in range(threads)]
    try:
        snip = measure(lambda i: check(boxes[i].run_python(SNIPPET)), n, threads)
        tests = measure(lambda i: check(boxes[i].run_tests(SOLUTION, TESTS).result), n, threads)
    finally:
        for b in boxes:
            b.close()
    return [(backend, "snippet", *snip), (backend, "unit tests", *tests)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=40, help="timed runs per row")
    ap.add_argument("--threads", type=int, default=2, help="callers for throughput")
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    rows = []

    def base_snip(_):
        p = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, check=True)
        assert p.stdout == b"45\n"

    def base_tests(_):
        subprocess.run([sys.executable, "-c", BASELINE_TESTS], capture_output=True, check=True)

    rows.append(("baseline python -c", "snippet", *measure(base_snip, args.n, args.threads)))
    rows.append(("baseline python -c", "unit tests", *measure(base_tests, args.n, args.threads)))

    for backend in available_backends():
        rows += bench_backend(backend, args.n, args.threads)

    with SandboxPool("auto", size=args.threads, wall_time_s=10) as pool:
        name = f"pool ({pool.backend}, {pool.size} workers)"
        rows.append(
            (
                name,
                "snippet",
                *measure(lambda i: check(pool.run_python(SNIPPET)), args.n, args.threads),
            )
        )
        rows.append(
            (
                name,
                "unit tests",
                *measure(
                    lambda i: check(pool.run_tests(SOLUTION, TESTS).result), args.n, args.threads
                ),
            )
        )

    print(f"{'backend':32s} {'workload':11s} {'p50 ms':>8s} {'p95 ms':>8s} {'runs/s':>8s}")
    for name, work, p50, p95, thr in rows:
        print(f"{name:32s} {work:11s} {p50:8.1f} {p95:8.1f} {thr:8.1f}")
    base = rows[0][2]
    pool_p50 = [r for r in rows if r[0].startswith("pool") and r[1] == "snippet"][0][2]
    print(f"pool_p50_speedup={base / pool_p50:.1f}")


if __name__ == "__main__":
    main()
