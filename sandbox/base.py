"""The shared implementation of :class:`Sandbox` over an in-sandbox agent."""

from __future__ import annotations

import base64
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from agentgym.errors import ConfigError, SandboxError, SandboxTimeout
from agentgym.sandbox._host import Channel
from agentgym.sandbox.grading import tests_frame
from agentgym.sandbox.types import ExecResult, Limits, TestOutcome, TestReport

# Seconds the host waits beyond the run's own wall limit before it declares the
# agent itself hung (an infrastructure failure, not a timeout of the code).
CONTROL_GRACE_S = 15.0


def _ended_by_the_code(e: SandboxError) -> dict[str, Any]:
    """The result of a run whose code killed the sandbox's agent (scored as its failure)."""
    why = (
        "agentgym: the sandbox's agent died during this run and a fresh one works, so the "
        f"code ended it (it runs as the agent's user here): {e}"
    )
    return {
        "stdout": "",
        "stderr": why,
        "exit_code": -9,
        "timed_out": isinstance(e, SandboxTimeout),
        "oom": False,
        "duration_s": 0.0,
        "truncated": False,
        "tests": [],
    }


class AgentSandbox(ABC):
    """A sandbox whose runs are forked by an agent living inside the isolation.

    Subclasses say how to start an agent (:meth:`_start_agent`) and whether one
    agent is kept warm for the sandbox's life (``persistent``) or a fresh one is
    started for every call.
    """

    backend = "abstract"
    _channel: Channel | None
    _closed: bool

    def __init__(self, limits: Limits, *, persistent: bool) -> None:
        self.limits = limits
        self.persistent = persistent
        self._lock = threading.RLock()
        self._channel: Channel | None = None
        self._closed = False

    # -- to implement -------------------------------------------------------------
    @abstractmethod
    def _start_agent(self, serve: bool) -> Channel:
        """Start an agent attached to this sandbox's workspace."""

    def _release(self) -> None:  # noqa: B027 - optional hook
        """Free backend resources (workspace, container) on close."""

    # -- plumbing -------------------------------------------------------------------
    def _call(self, req: dict[str, Any], timeout: float, tail: bytes = b"") -> dict[str, Any]:
        with self._lock:
            if self._closed:
                raise SandboxError(f"this {self.backend} sandbox is closed; create a new one")
            if not self.persistent:
                ch = self._start_agent(serve=False)
                try:
                    return ch.request(req, timeout, tail)
                finally:
                    ch.close()
            if self._channel is None or not self._channel.alive():
                if self._channel is not None:
                    self._channel.close()
                self._channel = self._start_agent(serve=True)
            try:
                return self._channel.request(req, timeout, tail)
            except SandboxError:
                self._channel.close()
                self._channel = None
                raise

    def healthy(self) -> bool:
        """Whether a warm agent is running (always True for per-call backends)."""
        if self._closed:
            return False
        if not self.persistent:
            return True
        return self._channel is not None and self._channel.alive()

    def _limits(self, limits: Limits | None) -> Limits:
        """Per-call limits; ``disk_mb`` and ``network`` are fixed at creation."""
        lim = limits or self.limits
        if lim.network and not self.limits.network:
            raise ConfigError(
                "network=True for one call needs a sandbox created with network=True; "
                "network access is fixed when the sandbox is created."
            )
        return lim

    def _exec(
        self,
        kind: str,
        code: str,
        limits: Limits | None,
        stdin: str | None = None,
        tail: bytes = b"",
        **extra: Any,
    ) -> tuple[ExecResult, list[dict[str, Any]]]:
        if not isinstance(code, str):
            raise ConfigError(f"code must be a str, got {type(code).__name__}")
        lim = self._limits(limits)
        req = {"op": "exec", "kind": kind, "code": code, "stdin": stdin, "limits": lim.to_dict()}
        req.update(extra)
        try:
            resp = self._call(req, lim.wall_time_s + CONTROL_GRACE_S, tail)
        except SandboxError as e:
            if not self._code_could_have(e):
                raise
            resp = _ended_by_the_code(e)
        if "exit_code" not in resp:
            raise SandboxError(f"{self.backend} sandbox agent failed: {resp.get('error', resp)}")
        result = ExecResult(
            stdout=resp["stdout"],
            stderr=resp["stderr"],
            exit_code=int(resp["exit_code"]),
            timed_out=bool(resp["timed_out"]),
            oom=bool(resp["oom"]),
            duration_s=float(resp["duration_s"]),
            truncated=bool(resp["truncated"]),
            backend=self.backend,
        )
        return result, list(resp.get("tests", []))

    def _code_could_have(self, e: SandboxError) -> bool:
        """Whether the code just run is what ended the agent (so it is the code's failure).

        Only where the code runs as the agent's own user (no uid switch: not root)
        can it signal the agent; then, if a fresh agent starts and answers, the
        sandbox itself is sound and the code ended it. Elsewhere an agent that died
        is an infrastructure failure.
        """
        if self._closed or getattr(self, "uid", 1) > 0:
            return False
        try:
            return bool(self._call({"op": "ping"}, CONTROL_GRACE_S).get("ok"))
        except SandboxError:
            return False

    # -- the Sandbox protocol -------------------------------------------------------
    def run_python(
        self, code: str, *, stdin: str | None = None, limits: Limits | None = None
    ) -> ExecResult:
        """Run Python source as ``__main__`` with the workspace as working directory.

        Args:
            code: Python source.
            stdin: Text fed to the program's standard input.
            limits: Limits for this run (defaults to the sandbox's).

        Returns:
            The run's :class:`ExecResult`; exceptions, timeouts and OOM in the
            code are reported there, never raised.

        Raises:
            SandboxError: The sandbox itself failed (infrastructure).
        """
        return self._exec("python", code, limits, stdin)[0]

    def run_shell(self, command: str, *, limits: Limits | None = None) -> ExecResult:
        """Run ``/bin/sh -c command`` in the workspace; see :meth:`run_python`."""
        return self._exec("shell", command, limits)[0]

    def run_tests(
        self,
        code: str,
        tests: Mapping[str, str],
        *,
        limits: Limits | None = None,
        setup: str = "",
        live_objects: bool = False,
    ) -> TestReport:
        """Grade ``code`` with test snippets, out of the code's reach.

        ``setup`` then ``code`` run once in the submission's process. Each test
        snippet runs in a separate grader process that never runs submitted code;
        the names a snippet uses without binding them (``f`` in ``assert f(2) ==
        4``) come from the submission: its functions and classes are called in a
        fresh fork of the loaded program, one per test, and what they return
        crosses back only as plain data (exact ``None``, ``bool``, ``int``,
        ``float``, ``complex``, ``str``, ``bytes`` and lists, tuples, dicts and
        sets of these). A test passes when its snippet runs to the end in the
        grader. Exceptions the code raises reach the test as their nearest
        builtin class (``except ValueError`` works); a non-plain result, an exit
        or a crash of the code fails the test with a message.

        Args:
            code: The submission's source.
            tests: Test name -> Python snippet.
            limits: Limits for the whole run (defaults to the sandbox's).
            setup: Source run before ``code`` in the submission's process (e.g.
                helpers the task's prompt defines).
            live_objects: Let calls return objects that stay in the submission's
                process (stateful-class tasks); the test gets a handle whose
                methods, items, ``len``, ``iter``, ``in`` and ``str`` are
                answered by the submission, while comparing or truth-testing the
                handle itself fails the test.

        Example:
            >>> code, tests = "def f(x): return 2*x", {"t1": "assert f(2) == 4"}
            >>> rep = sb.run_tests(code, tests)  # doctest: +SKIP
            >>> rep.all_passed  # doctest: +SKIP
            True
        """
        result, raw = self._exec(
            "grade", code, limits, tail=tests_frame(tests), setup=setup, live=live_objects
        )
        return self._report(tests, result, raw)

    @staticmethod
    def _report(
        tests: Mapping[str, str], result: ExecResult, raw: list[dict[str, Any]]
    ) -> TestReport:
        by_name = {t.get("name"): t for t in raw}
        if result.timed_out:
            why = "not finished: the run hit its time limit"
        elif result.oom:
            why = "not finished: the run ran out of memory"
        else:
            why = f"not finished: the run ended early (exit code {result.exit_code})"
        outcomes = []
        for name in map(str, tests):
            t = by_name.get(name)
            if t is None:
                outcomes.append(TestOutcome(name, False, why))
            else:
                passed = bool(t.get("passed"))
                outcomes.append(TestOutcome(name, passed, None if passed else t.get("error")))
        return TestReport(outcomes=outcomes, result=result)

    def put_file(self, path: str, data: bytes | str) -> None:
        """Write ``data`` to ``path`` (relative to the workspace; parents are created).

        Raises:
            ConfigError: ``path`` is absolute or contains ``..``.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._check_path(path)
        req = {"op": "put", "path": path, "data": base64.b64encode(raw).decode()}
        self._file_result(self._call(req, CONTROL_GRACE_S + 30), path)

    def get_file(self, path: str) -> bytes:
        """Read ``path`` (relative to the workspace).

        Raises:
            FileNotFoundError: No such file in the workspace.
        """
        self._check_path(path)
        resp = self._call({"op": "get", "path": path}, CONTROL_GRACE_S + 30)
        self._file_result(resp, path)
        return base64.b64decode(resp["value"])

    def reset(self) -> None:
        """Kill leftover processes and empty the workspace and ``/tmp``."""
        resp = self._call({"op": "reset"}, CONTROL_GRACE_S + 30)
        if not resp.get("ok"):
            raise SandboxError(f"could not reset the {self.backend} sandbox: {resp.get('error')}")

    @staticmethod
    def _check_path(path: str) -> None:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(
                f"sandbox file paths are relative to the workspace, without '..'; got {path!r}"
            )

    def _file_result(self, resp: dict[str, Any], path: str) -> None:
        if resp.get("ok"):
            return
        if resp.get("kind") == "notfound":
            raise FileNotFoundError(f"no file {path!r} in the {self.backend} sandbox workspace")
        raise SandboxError(f"file operation on {path!r} failed: {resp.get('error')}")

    def _detach(self) -> Channel | None:
        """Mark closed and hand over the warm channel (None if already closed)."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            ch, self._channel = self._channel, None
            return ch

    def close(self) -> None:
        """Stop the agent and free the workspace. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._channel is not None:
                self._channel.close()
                self._channel = None
            self._release()

    def __enter__(self) -> AgentSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
