"""A thread-safe pool of warm sandbox workers: a snippet costs a fork, not a start-up."""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from agentgym.errors import ConfigError, SandboxError
from agentgym.sandbox.base import AgentSandbox
from agentgym.sandbox.grading import tests_frame
from agentgym.sandbox.types import ExecResult, Limits, TestReport

ACQUIRE_TIMEOUT_S = 600.0


class SandboxPool:
    r"""``size`` warm agents of one isolating backend, shared safely by many threads.

    Every call takes an idle worker, runs in a fork of its pristine interpreter,
    then wipes the worker's workspace and ``/tmp`` and kills whatever the run
    left behind, so nothing (files, globals, environment, children) reaches the
    next task. A worker that died is replaced before it is used again; a worker
    that dies *during* a call makes that call raise :class:`SandboxError`
    (never a silent re-run of the code).

    Use :meth:`session` for several calls that share one workspace.

    Example:
        >>> with SandboxPool("bwrap", size=2, wall_time_s=5) as pool:  # doctest: +SKIP
        ...     pool.run_python("print(6 * 7)").stdout
        '42\\n'
    """

    def __init__(
        self,
        backend: str = "auto",
        size: int | None = None,
        *,
        max_size: int | None = None,
        **limits: Any,
    ) -> None:
        """Start the workers.

        Args:
            backend: ``"auto"``, ``"bwrap"``, ``"docker"`` or ``"local"``.
            size: Workers started now (default: CPU count, at most 8); 0 starts
                none until the first call.
            max_size: Grow up to this many workers when every worker is busy
                (default: ``size``, a fixed pool). A pool shared by threads then
                ends up as large as the number of threads calling it at once.
            **limits: :class:`Limits` fields, the default for every call.
        """
        from agentgym.sandbox import make_backend, resolve_backend

        self.limits = Limits.from_kwargs(**limits)
        self.backend = resolve_backend(backend)
        self.size = size if size is not None else min(8, os.cpu_count() or 1)
        self.max_size = max(self.size, 1) if max_size is None else max_size
        if self.size < 0 or self.max_size < max(self.size, 1):
            raise ConfigError(
                f"SandboxPool needs 0 <= size <= max_size and max_size >= 1; got size="
                f"{self.size}, max_size={self.max_size}"
            )
        self._make = lambda: make_backend(self.backend, self.limits, persistent=True)
        self._idle: queue.Queue[AgentSandbox] = queue.Queue()
        self._all: set[AgentSandbox] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._slots = 0  # workers started or starting, idle or busy
        self.replaced = 0
        try:
            for _ in range(self.size):
                self._slots += 1
                self._add(self._warm(self._make()))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _warm(worker: AgentSandbox) -> AgentSandbox:
        worker.reset()  # starts the agent now, so the first task pays only a fork
        return worker

    def _add(self, worker: AgentSandbox) -> None:
        with self._lock:
            self._all.add(worker)
        self._idle.put(worker)

    def _drop(self, worker: AgentSandbox) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.close()

    def _grow(self) -> AgentSandbox | None:
        """A new worker when all are busy and there is room, else None."""
        with self._lock:
            if self._slots >= self.max_size:
                return None
            self._slots += 1
        try:
            worker = self._warm(self._make())
        except BaseException:
            with self._lock:
                self._slots -= 1
            raise
        with self._lock:
            self._all.add(worker)
        return worker

    def _acquire(self) -> AgentSandbox:
        if self._closed:
            raise SandboxError("this SandboxPool is closed; create a new one")
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            grown = self._grow()
            if grown is not None:
                return grown
            try:
                worker = self._idle.get(timeout=ACQUIRE_TIMEOUT_S)
            except queue.Empty:
                raise SandboxError(
                    f"no SandboxPool worker came free in {ACQUIRE_TIMEOUT_S:g} s; every "
                    f"one of its {self.max_size} workers is busy (raise max_size)"
                ) from None
        if self._closed:
            self._idle.put(worker)
            raise SandboxError("this SandboxPool is closed; create a new one")
        if not worker.healthy():
            self._drop(worker)
            self.replaced += 1
            try:
                worker = self._warm(self._make())
            except BaseException:
                self._add(make_dead_placeholder(self.limits))  # keep the slot
                raise
            with self._lock:
                self._all.add(worker)
        return worker

    def _release(self, worker: AgentSandbox, ok: bool) -> None:
        if ok and not self._closed:
            try:
                worker.reset()
            except SandboxError:
                ok = False
        if not ok or self._closed:
            self._drop(worker)
            if self._closed:
                return
            self.replaced += 1
            try:
                worker = self._warm(self._make())
            except SandboxError:
                # keep the pool's size: the next acquire retries the start
                worker = make_dead_placeholder(self.limits)
        self._add(worker)

    @contextlib.contextmanager
    def session(self) -> Iterator[AgentSandbox]:
        """Hold one worker for several calls sharing a workspace; wiped afterwards.

        Example:
            >>> with pool.session() as sb:  # doctest: +SKIP
            ...     sb.put_file("data.txt", "hi")
            ...     sb.run_python("print(open('data.txt').read())")
        """
        worker = self._acquire()
        ok = False
        try:
            yield worker
            ok = True
        except SandboxError:
            raise
        except BaseException:
            ok = True
            raise
        finally:
            self._release(worker, ok and worker.healthy())

    def _oneshot(self, kind: str, code: str, limits: Limits | None, **extra: Any) -> Any:
        """One call on a clean worker; the wipe rides on the same round trip."""
        worker = self._acquire()
        try:
            out = worker._exec(kind, code, limits, reset=True, **extra)
        except BaseException as e:
            self._release(worker, not isinstance(e, SandboxError) and worker.healthy())
            raise
        self._add(worker)
        return out

    def run_python(
        self, code: str, *, stdin: str | None = None, limits: Limits | None = None
    ) -> ExecResult:
        """Run Python in a clean worker; see :meth:`AgentSandbox.run_python`."""
        return self._oneshot("python", code, limits, stdin=stdin)[0]

    def run_shell(self, command: str, *, limits: Limits | None = None) -> ExecResult:
        """Run a shell command in a clean worker."""
        return self._oneshot("shell", command, limits)[0]

    def run_tests(
        self,
        code: str,
        tests: Mapping[str, str],
        *,
        limits: Limits | None = None,
        setup: str = "",
        live_objects: bool = False,
    ) -> TestReport:
        """Grade code in a clean worker; see :meth:`AgentSandbox.run_tests`."""
        result, raw = self._oneshot(
            "grade", code, limits, tail=tests_frame(tests), setup=setup, live=live_objects
        )
        return AgentSandbox._report(tests, result, raw)

    def put_file(self, path: str, data: bytes | str) -> None:
        """Not available on the pool itself: every call gets a fresh workspace.

        Raises:
            SandboxError: Always; use ``with pool.session() as sb: sb.put_file(...)``.
        """
        raise SandboxError(
            "SandboxPool calls each get a fresh workspace, so files cannot be put on the "
            "pool itself; use `with pool.session() as sb:` and sb.put_file/sb.get_file."
        )

    def get_file(self, path: str) -> bytes:
        """Not available on the pool itself; see :meth:`put_file`."""
        raise SandboxError(
            "SandboxPool calls each get a fresh workspace; use `with pool.session() as sb:` "
            "and sb.get_file."
        )

    def close(self) -> None:
        """Stop every worker. Calls in flight finish first on their own worker."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.close()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DeadWorker(AgentSandbox):
    """Stands in for a worker that could not be restarted; replaced on next acquire."""

    backend = "dead"

    def _start_agent(self, serve: bool) -> Any:
        raise SandboxError("worker could not be started")

    def healthy(self) -> bool:
        return False


def make_dead_placeholder(limits: Limits) -> AgentSandbox:
    """A worker slot that is replaced on its next use."""
    return _DeadWorker(limits, persistent=True)


# -- the warm pools shared by the envs of a process ------------------------------------
SHARED_MAX_SIZE = 64
_shared: dict[tuple[Any, ...], SandboxPool] = {}
_shared_lock = threading.Lock()


def shared_pool(
    backend: str = "auto", *, disk_mb: int | None = None, network: bool = False
) -> SandboxPool:
    r"""The warm pool this process's envs share for ``backend`` (created on first use).

    It starts empty and grows by one worker whenever every worker is busy, so it
    ends up as large as the number of env workers stepping at once (at most
    :data:`SHARED_MAX_SIZE`); it is closed when the process exits. Pass the
    limits of each call to its ``run_*`` method: only ``disk_mb`` and
    ``network`` are fixed per pool.

    Example:
        >>> pool = shared_pool("auto")  # doctest: +SKIP
        >>> pool.run_python("print(1)", limits=Limits(wall_time_s=5)).stdout  # doctest: +SKIP
        '1\n'
    """
    from agentgym.sandbox import resolve_backend

    fixed = {"disk_mb": Limits().disk_mb if disk_mb is None else disk_mb, "network": network}
    key = (os.getpid(), resolve_backend(backend), fixed["disk_mb"], network)
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None or pool._closed:
            pool = SandboxPool(key[1], size=0, max_size=SHARED_MAX_SIZE, **fixed)
            _shared[key] = pool
    return pool


@atexit.register
def close_shared_pools() -> None:
    """Close every shared pool of this process (runs at exit)."""
    with _shared_lock:
        pools = [p for k, p in _shared.items() if k[0] == os.getpid()]
        _shared.clear()
    for p in pools:
        p.close()
