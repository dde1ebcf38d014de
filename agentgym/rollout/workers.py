"""Where env operations run: threads, processes (and Ray actors, in ``ray_backend``).

The collector never calls ``env.reset``/``env.step`` itself; it hands each operation to
an :class:`EnvRunner` with a ticket and gets ``(ticket, value, error)`` back through a
callback, so episodes advance independently and a slow env holds up only its own
episode. Each operation has a deadline (the collector's); when one passes, the
collector calls :meth:`EnvRunner.abandon` and the runner replaces the stuck worker:

- threads (:class:`ThreadEnvRunner`): a hung Python thread cannot be killed, so it is
  left behind (a daemon; its late result is dropped) and a fresh thread takes its
  place;
- processes (:class:`PinnedEnvRunner` over :class:`ProcessWorker`): each episode's env
  lives in one worker process; the stuck process is killed and restarted, and the
  other episodes it held end as ``infra_error`` (the collector retries them).
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentgym.errors import ConfigError, InfraError

__all__ = [
    "Post",
    "EnvSpec",
    "EnvRunner",
    "ThreadWorkers",
    "ThreadEnvRunner",
    "EnvHost",
    "RemoteFailure",
    "PinnedEnvRunner",
    "ProcessWorker",
    "make_env_runner",
]

Post = Callable[[int, Any, "BaseException | None"], None]
"""``post(ticket, value, error)``: how a runner reports a finished operation."""


@dataclass(frozen=True)
class EnvSpec:
    """How to build an episode's env: ``factory()`` if given, else ``make(env_id, **kwargs)``."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    factory: Callable[[], Any] | None = None

    def build(self) -> Any:
        """A fresh env."""
        if self.factory is not None:
            return self.factory()
        from agentgym.registry import make

        return make(self.env_id, **self.kwargs)


# ----------------------------------------------------------------------------- threads
class _Thread:
    def __init__(self) -> None:
        self.retired = False


class ThreadWorkers:
    """Daemon threads running jobs from one queue; a hung job's thread can be replaced.

    Args:
        n: threads.
        name: thread name prefix.
        post: receives ``(ticket, fn(), None)`` or ``(ticket, None, exception)``.
    """

    def __init__(self, n: int, name: str, post: Post) -> None:
        if n < 1:
            raise ConfigError(f"{name}: need at least one worker thread, got {n}")
        self._jobs: queue.SimpleQueue[tuple[int, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[int, tuple[_Thread, float]] = {}
        self._cancelled: set[int] = set()
        self._live = 0
        self._name = name
        self._post = post
        self._count = itertools.count()
        for _ in range(n):
            self._spawn()

    def _spawn(self) -> None:
        me = _Thread()
        self._live += 1
        t = threading.Thread(
            target=self._loop, args=(me,), name=f"{self._name}-{next(self._count)}", daemon=True
        )
        t.start()

    def _loop(self, me: _Thread) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            ticket, fn = item
            with self._lock:
                if ticket in self._cancelled:
                    self._cancelled.discard(ticket)
                    continue
                self._running[ticket] = (me, time.monotonic())
            value: Any = None
            error: BaseException | None = None
            try:
                value = fn()
            except BaseException as e:  # reported to the collector, which records it
                error = e
            with self._lock:
                self._running.pop(ticket, None)
                retired = me.retired
            if retired:  # abandoned while running: a replacement already took our place
                return
            self._post(ticket, value, error)

    def submit(self, ticket: int, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on a free thread; its result is posted under ``ticket``."""
        self._jobs.put((ticket, fn))

    def running_since(self, ticket: int) -> float | None:
        """When ``ticket`` started running (``time.monotonic``); None while it is queued."""
        with self._lock:
            entry = self._running.get(ticket)
        return entry[1] if entry else None

    def abandon(self, ticket: int) -> None:
        """Give up on ``ticket``: drop it if queued; if running, leave its thread behind."""
        with self._lock:
            entry = self._running.pop(ticket, None)
            if entry is None:
                self._cancelled.add(ticket)
                return
            entry[0].retired = True
            self._live -= 1
            self._spawn()

    def shutdown(self) -> None:
        """Stop the live threads once their queued jobs are done (abandoned ones are left)."""
        with self._lock:
            live, self._live = self._live, 0
        for _ in range(live):
            self._jobs.put(None)


class EnvRunner(ABC):
    """Runs env operations for episodes (keys); results go to ``post`` by ticket."""

    def __init__(self, post: Post) -> None:
        self.post = post

    @abstractmethod
    def open(self, ticket: int, key: Any, spec: EnvSpec, seed: int, options: Any) -> None:
        """Build the episode's env and ``reset`` it; posts ``(observation, info)``."""

    @abstractmethod
    def step(self, ticket: int, key: Any, action: str) -> None:
        """``env.step(action)``; posts the 5-tuple."""

    @abstractmethod
    def close_env(self, ticket: int, key: Any) -> None:
        """Close and forget the episode's env (a no-op if it has none); posts None."""

    @abstractmethod
    def running_since(self, ticket: int, key: Any) -> float | None:
        """When the operation started running (None while it waits for a worker)."""

    @abstractmethod
    def abandon(self, ticket: int, key: Any) -> None:
        """The operation under ``ticket`` hung: forget the env, replace the stuck worker."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release the workers (envs still open are closed on a best-effort basis)."""


class ThreadEnvRunner(EnvRunner):
    """Envs in this process, stepped on ``workers`` threads (see the module docstring)."""

    def __init__(self, workers: int, post: Post) -> None:
        super().__init__(post)
        self._pool = ThreadWorkers(workers, "agentgym-env", post)
        self._envs: dict[Any, Any] = {}

    def open(self, ticket: int, key: Any, spec: EnvSpec, seed: int, options: Any) -> None:  # noqa: D102
        def job() -> Any:
            env = spec.build()
            self._envs[key] = env
            return env.reset(seed=seed, options=options)

        self._pool.submit(ticket, job)

    def step(self, ticket: int, key: Any, action: str) -> None:  # noqa: D102
        env = self._envs[key]
        self._pool.submit(ticket, lambda: env.step(action))

    def close_env(self, ticket: int, key: Any) -> None:  # noqa: D102
        env = self._envs.pop(key, None)
        self._pool.submit(ticket, (lambda: env.close()) if env is not None else (lambda: None))

    def running_since(self, ticket: int, key: Any) -> float | None:  # noqa: D102
        return self._pool.running_since(ticket)

    def abandon(self, ticket: int, key: Any) -> None:  # noqa: D102
        self._envs.pop(key, None)  # never closed: closing a hung env may hang too
        self._pool.abandon(ticket)

    def shutdown(self) -> None:  # noqa: D102
        self._pool.shutdown()
        self._envs.clear()


# ----------------------------------------------------------------------------- remote
@dataclass(frozen=True)
class RemoteFailure:
    """An exception raised in a worker process or actor, as plain data."""

    infra: bool
    text: str

    @classmethod
    def of(cls, e: BaseException) -> RemoteFailure:
        """Capture ``e`` with the end of its traceback."""
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-4:])[-2000:]
        return cls(isinstance(e, InfraError), tb)

    def exception(self) -> BaseException:
        """An exception to record on the trajectory (InfraError for infrastructure)."""
        msg = f"in the env worker:\n{self.text}"
        return InfraError(msg) if self.infra else RuntimeError(msg)


class EnvHost:
    """The envs of the episodes pinned to one worker process or actor.

    ``run(op, key, args)`` returns ``(value, None)`` or ``(None, RemoteFailure)``.
    """

    def __init__(self) -> None:
        self.envs: dict[Any, Any] = {}

    def run(self, op: str, key: Any, args: tuple[Any, ...]) -> tuple[Any, RemoteFailure | None]:
        """Run one operation: ``open``, ``step`` or ``close``."""
        try:
            if op == "open":
                spec, seed, options = args
                self.envs[key] = spec.build()
                return self.envs[key].reset(seed=seed, options=options), None
            if op == "step":
                if key not in self.envs:
                    raise InfraError(f"episode {key}: its env was lost with a replaced worker")
                return self.envs[key].step(args[0]), None
            env = self.envs.pop(key, None)
            if env is not None:
                env.close()
            return None, None
        except BaseException as e:
            return None, RemoteFailure.of(e)


def _process_main(conn: Any) -> None:
    host = EnvHost()
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        ticket, op, key, args = msg
        value, failure = host.run(op, key, args)
        try:
            conn.send((ticket, value, failure))
        except Exception as e:  # an unpicklable result: report it instead
            conn.send((ticket, None, RemoteFailure.of(e)))


class FifoWorker:
    """A worker that runs its operations one at a time, in the order sent.

    Subclasses send with :meth:`_sent`, report with :meth:`_answered`, and call
    :meth:`_started` once the worker is up (a process still importing is not running
    anything yet); this class knows which operation is running and since when.
    """

    def __init__(self, post: Post) -> None:
        self._post = post
        self._lock = threading.Lock()
        self._order: dict[int, None] = {}  # pending tickets, oldest first
        self._head_since = time.monotonic()
        self._up = False

    def _started(self) -> None:
        with self._lock:
            self._up = True
            self._head_since = time.monotonic()

    def _sent(self, ticket: int) -> None:
        with self._lock:
            if not self._order:
                self._head_since = time.monotonic()
            self._order[ticket] = None

    def _answered(self, ticket: int, value: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._order.pop(ticket, 0) is not None:
                return  # already reported (the worker died)
            self._head_since = time.monotonic()
        self._post(ticket, value, error)

    def _lost(self, why: str) -> None:
        with self._lock:
            lost, self._order = list(self._order), {}
        for t in lost:
            self._post(t, None, InfraError(why))

    def running_since(self, ticket: int) -> float | None:
        """When ``ticket`` started (it is the oldest pending one); None while queued."""
        with self._lock:
            head = next(iter(self._order), None)
            return self._head_since if self._up and head == ticket else None


class ProcessWorker(FifoWorker):
    """One env worker process (spawned); operations run there one at a time."""

    def __init__(self, post: Post) -> None:
        super().__init__(post)
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_process_main, args=(child,), daemon=True)
        self._proc.start()
        child.close()
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def call(self, ticket: int, op: str, key: Any, args: tuple[Any, ...]) -> None:
        """Send one operation; its result is posted when it comes back."""
        self._sent(ticket)
        try:
            with self._send_lock:
                self._conn.send((ticket, op, key, args))
        except Exception as e:  # unpicklable arguments, or the process is gone
            self._answered(ticket, None, InfraError(f"could not send to the env worker: {e}"))

    def _read(self) -> None:
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                break
            if msg == "ready":
                self._started()
                continue
            ticket, value, failure = msg
            self._answered(ticket, value, failure.exception() if failure else None)
        self._lost("the env worker process died (or was replaced)")

    def kill(self) -> None:
        """Kill the process; operations still pending are posted as InfraError."""
        self._proc.kill()
        self._proc.join(timeout=5)
        self._conn.close()

    def stop(self) -> None:
        """Ask the process to exit after its current operation."""
        try:
            self._conn.send(None)
        except Exception:
            pass
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()


class PinnedEnvRunner(EnvRunner):
    """Each episode's env lives in one of ``n`` workers (processes or Ray actors).

    Args:
        n: workers.
        post: the result callback.
        make_worker: builds a worker, given the callback: a :class:`FifoWorker` with
            ``call(ticket, op, key, args)``, ``kill()`` and ``stop()``.
    """

    def __init__(self, n: int, post: Post, make_worker: Callable[[Post], Any]) -> None:
        super().__init__(post)
        if n < 1:
            raise ConfigError(f"env_workers must be >= 1, got {n}")
        self._make = make_worker
        self._home: dict[Any, int] = {}
        self._where: dict[int, int] = {}  # ticket -> worker, while pending
        self._load = [0] * n
        self._workers = [make_worker(self._answer) for _ in range(n)]

    def _answer(self, ticket: int, value: Any, error: BaseException | None) -> None:
        self._where.pop(ticket, None)
        self.post(ticket, value, error)

    def _call(self, w: int, ticket: int, op: str, key: Any, args: tuple[Any, ...]) -> None:
        self._where[ticket] = w
        self._workers[w].call(ticket, op, key, args)

    def open(self, ticket: int, key: Any, spec: EnvSpec, seed: int, options: Any) -> None:  # noqa: D102
        w = min(range(len(self._workers)), key=self._load.__getitem__)
        self._home[key] = w
        self._load[w] += 1
        self._call(w, ticket, "open", key, (spec, seed, options))

    def step(self, ticket: int, key: Any, action: str) -> None:  # noqa: D102
        self._call(self._home[key], ticket, "step", key, (action,))

    def close_env(self, ticket: int, key: Any) -> None:  # noqa: D102
        w = self._home.pop(key, None)
        if w is None:
            self.post(ticket, None, None)
            return
        self._load[w] -= 1
        self._call(w, ticket, "close", key, ())

    def running_since(self, ticket: int, key: Any) -> float | None:  # noqa: D102
        w = self._where.get(ticket)
        return None if w is None else self._workers[w].running_since(ticket)

    def abandon(self, ticket: int, key: Any) -> None:  # noqa: D102
        w = self._where.pop(ticket, None)
        if self._home.pop(key, None) is not None and w is not None:
            self._load[w] -= 1
        if w is None:
            return
        old, self._workers[w] = self._workers[w], self._make(self._answer)
        old.kill()  # its other pending operations come back as InfraError

    def shutdown(self) -> None:  # noqa: D102
        for w in self._workers:
            w.stop()


def make_env_runner(backend: str, workers: int, post: Post, **kwargs: Any) -> EnvRunner:
    """The runner for ``backend``: ``thread``, ``process`` or ``ray``."""
    if backend == "thread":
        return ThreadEnvRunner(workers, post)
    if backend == "process":
        return PinnedEnvRunner(workers, post, ProcessWorker)
    if backend == "ray":
        from agentgym.rollout.ray_backend import RayEnvWorker

        return PinnedEnvRunner(workers, post, lambda p: RayEnvWorker(p, **kwargs))
    raise ConfigError(f"unknown env backend {backend!r}; choose 'thread', 'process' or 'ray'")
