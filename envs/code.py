"""Code: write a Python function, see which unit tests fail, fix it, repeat.

``agentgym/Code-v0`` poses a programming task; each turn the agent submits
code, which runs in an :mod:`agentgym.sandbox` against the task's tests, and
the feedback names the failing tests with a trimmed traceback. The episode
ends (terminated) when every test passes; the turn limit comes from the
registration (``max_turns``).

Tasks use the HumanEval JSONL form ``{"task_id", "prompt", "entry_point",
"test"}``, where ``test`` defines ``check(candidate)``; other keys (e.g.
``canonical_solution``, a complete reference program for the shipped tasks)
are kept but unused. ``tasks=PATH`` loads a JSONL file; the default is the
shipped set ``envs/data/code_tasks.jsonl`` (41 original tasks). The seed picks
a task; ``options={"task": i}`` picks task ``i`` (an index or a ``task_id``)
and ``options={"task": {...}}`` poses a task given as a mapping.

Tests: every statement of ``check``'s body that holds an ``assert`` or a
``raise`` (an assert, a loop of asserts, a ``try``/``else: raise`` ...) becomes
its own test ``test_1`` ... ``test_n``; the other statements (assignments,
calls, imports, definitions) are setup, run before every later test. Module-level
code of ``test`` (imports, helpers, constants) runs before each test, after
the helpers the prompt defines (imports, functions and classes other than
``entry_point``, e.g. HumanEval's ``encode_cyclic``). Earlier test statements
that touch local state (``assert c.get(1) == 1`` after ``c = candidate()``) are
replayed for their side effects with failures ignored, so a stateful check sees
the same state as when run in sequence. A ``test`` without a splittable
``check`` runs whole, as one test named ``check``.

Actions: the code is the last ```` ```python ```` (or ```` ```py ````) fenced
block of the reply, else the last unlabelled fenced block, else the whole
reply. The code must define ``entry_point``; the task's ``prompt`` is not
prepended.

Reward components: ``format`` (-0.1 when the reply has no code or the code is
not valid Python; nothing is run then), ``tests`` (fraction of the tests newly
passing compared with the best turn so far) and ``outcome`` (1.0 when all
tests pass). User-code timeouts, crashes and out-of-memory are ordinary
failures with feedback. A failure of the sandbox itself raises an
:class:`~agentgym.errors.InfraError` (``SandboxUnavailable``) out of ``step``,
so the collector records ``infra_error`` rather than a reward of 0.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import gymnasium

from agentgym.core import Message, system, user
from agentgym.envs.shaping import ShapedEnv
from agentgym.errors import ConfigError, SandboxError, SandboxUnavailable
from agentgym.registry import register
from agentgym.rewards import RewardSpec

__all__ = ["CodeTask", "Code", "extract_code", "load_tasks", "split_tests", "register_envs"]

REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")
DEFAULT_LIMITS = {"wall_time_s": 10.0, "memory_mb": 512}
_SHOWN_FAILURES = 5
_TRACE_LINES = 8
_TRACE_CHARS = 800
_CASE_FN = "check"
_FN_EXTRA: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
# statements of check() that set things up rather than test something
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Solve the task by writing a complete Python "
    "program in one ```python fenced code block. It is run against hidden unit tests; "
    "if some fail you will see which ones and can submit a corrected program."
)


# ------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class CodeTask:
    """A programming task in HumanEval form, with its tests split by name."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    tests: dict[str, str] = field(default_factory=dict, compare=False)
    """Test name -> Python snippet run against the submission's globals."""
    descriptions: dict[str, str] = field(default_factory=dict, compare=False)
    """Test name -> the statement it checks (shown in feedback)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Other keys of the task record (e.g. ``canonical_solution``)."""

    @property
    def live_objects(self) -> bool:
        """Whether the tests hold objects of the submission (``"live_objects": true``)."""
        return self.extra.get("live_objects") is True

    @classmethod
    def from_record(cls, record: Mapping[str, Any], where: str = "task") -> CodeTask:
        """Validate a task mapping and split its tests.

        Raises:
            ConfigError: a required key is missing or not a non-empty string.
        """
        if not isinstance(record, Mapping):
            raise ConfigError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for key in REQUIRED_KEYS:
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise ConfigError(
                    f"{where}: key {key!r} must be a non-empty string; "
                    f"a task needs {list(REQUIRED_KEYS)}"
                )
        if not record["entry_point"].isidentifier():
            raise ConfigError(f"{where}: entry_point {record['entry_point']!r} is not a name")
        tests, descriptions = split_tests(
            record["test"], record["entry_point"], prompt=record["prompt"]
        )
        extra = {k: v for k, v in record.items() if k not in REQUIRED_KEYS}
        return cls(
            task_id=record["task_id"],
            prompt=record["prompt"],
            entry_point=record["entry_point"],
            test=record["test"],
            tests=tests,
            descriptions=descriptions,
            extra=extra,
        )


def load_tasks(path: str | os.PathLike | None = None) -> list[CodeTask]:
    """Read tasks from a JSONL file (one task per line; blank lines skipped).

    Args:
        path: the file; None loads the shipped ``envs/data/code_tasks.jsonl``.

    Raises:
        ConfigError: the file is missing, empty, or a line is not a valid task.
    """
    if path is None:
        text = resources.files("agentgym.envs").joinpath("data/code_tasks.jsonl").read_text("utf-8")
        name = "code_tasks.jsonl"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"tasks file {str(p)!r} does not exist; pass a JSONL file path")
        text, name = p.read_text(encoding="utf-8"), str(p)
    tasks = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name}:{n}: not valid JSON ({e.msg})") from e
        tasks.append(CodeTask.from_record(record, f"{name}:{n}"))
    if not tasks:
        raise ConfigError(f"{name} holds no tasks")
    return tasks


def split_tests(
    test: str, entry_point: str, prompt: str = ""
) -> tuple[dict[str, str], dict[str, str]]:
    r"""Split a HumanEval ``check(candidate)`` into one snippet per test statement.

    Args:
        test: Python source defining ``check(candidate)``.
        entry_point: the name the submission must define.
        prompt: the task prompt; the helpers it defines (imports, functions and
            classes other than ``entry_point``, as in HumanEval's
            ``encode_cyclic``) are defined before each test, since tests may
            call them.

    Returns:
        ``(tests, descriptions)``: name -> snippet to run against the
        submission's globals, and name -> the checked statement's first line.

    Example:
        >>> tests, desc = split_tests("def check(c):\n    assert c(1) == 2\n", "f")
        >>> desc
        {'test_1': 'assert c(1) == 2'}
    """
    helpers = _prompt_helpers(prompt, entry_point)
    whole = {"check": f"{helpers}\n{test}\n\ncheck({entry_point})\n"}
    try:
        module = ast.parse(test)
    except (SyntaxError, ValueError):
        return whole, {"check": "check(...)"}
    checks = [
        n
        for n in module.body
        if isinstance(n, ast.FunctionDef) and n.name == "check" and len(n.args.args) == 1
    ]
    if len(checks) != 1:
        return whole, {"check": "check(...)"}
    check = checks[0]
    preamble = (
        helpers + "\n" + ast.unparse(ast.Module([n for n in module.body if n is not check], []))
    )
    param = check.args.args[0].arg
    body = list(check.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # docstring
    local_names = _stored_names(body)
    tests: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    replay: list[ast.stmt] = []  # what runs before the next test
    for stmt in body:
        if not _is_test(stmt):
            replay.append(stmt)
            continue
        name = f"test_{len(tests) + 1}"
        fn = ast.FunctionDef(
            name=_CASE_FN,
            args=ast.arguments([], [ast.arg(param)], None, [], [], None, []),
            body=[*replay, stmt],
            decorator_list=[],
            returns=None,
            **_FN_EXTRA,
        )
        src = ast.unparse(ast.fix_missing_locations(ast.Module([fn], [])))
        tests[name] = f"{preamble}\n{src}\n{_CASE_FN}({entry_point})\n"
        descriptions[name] = ast.unparse(stmt).splitlines()[0]
        if _loads_any(stmt, local_names):  # may change state later tests see
            replay.append(_quiet(stmt))
    if not tests:
        return whole, {"check": "check(...)"}
    return tests, descriptions


def _prompt_helpers(prompt: str, entry_point: str) -> str:
    """Source of the imports, functions and classes the prompt defines, bar ``entry_point``."""
    try:
        module = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return ""
    keep: list[ast.stmt] = [
        n
        for n in module.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
        or (isinstance(n, _DEFINITIONS[:3]) and n.name != entry_point)
    ]
    return ast.unparse(ast.Module(keep, [])) if keep else ""


def _is_test(stmt: ast.stmt) -> bool:
    """A statement that checks something: it holds an ``assert`` or a ``raise``."""
    if isinstance(stmt, _DEFINITIONS):
        return False
    return any(isinstance(n, (ast.Assert, ast.Raise)) for n in ast.walk(stmt))


def _stored_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.Module(body, [])):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _loads_any(stmt: ast.stmt, names: set[str]) -> bool:
    return any(
        isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in names
        for n in ast.walk(stmt)
    )


class _AssertToExpr(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.Expr:
        return ast.copy_location(ast.Expr(node.test), node)


def _quiet(stmt: ast.stmt) -> ast.stmt:
    """``stmt`` replayed for its side effects only: asserts evaluated, errors ignored.

    Later tests of a stateful check (``c.put(1)``; ``assert c.get(1) == 1``;
    ``c.put(2)`` ...) see the same state as in the original sequential run,
    but an earlier failing assert does not fail them too.
    """
    import copy

    body = _AssertToExpr().visit(copy.deepcopy(stmt))
    handler = ast.ExceptHandler(ast.Name("Exception", ast.Load()), None, [ast.Pass()])
    return ast.Try([body], [handler], [], [])


# ---------------------------------------------------------------- actions
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str) -> str | None:
    r"""The code in an assistant reply (rules in the module docstring), or None.

    Example:
        >>> extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.")
        'def f():\n    return 1\n'
    """
    blocks = _FENCE_RE.findall(text)
    if blocks:
        py = [code for lang, code in blocks if lang.lower() in ("python", "py", "python3")]
        plain = [code for lang, code in blocks if not lang]
        chosen = py or plain or [blocks[-1][1]]
        code = chosen[-1]
    else:
        code = text
    return code if code.strip() else None


# -------------------------------------------------------------------- env
class Code(ShapedEnv):
    r"""Multi-turn Python programming against unit tests run in a sandbox.

    Args:
        tasks: JSONL file of tasks, or a sequence of task mappings; None uses
            the shipped set.
        backend: sandbox backend (``"auto"``, ``"bwrap"``, ``"docker"``,
            ``"local"``; ``"pool"`` is ``"auto"``).
        warm: Run in the warm pool this process's envs share
            (:func:`agentgym.sandbox.shared_pool`: a fork per submission, grown
            to the number of env workers, closed at exit); False starts a fresh
            sandbox agent for every submission instead.
        limits: :class:`~agentgym.sandbox.Limits` or a mapping of its fields, for
            the whole run of a submission and its tests (default 10 s, 512 MiB).
        sandbox: a sandbox to use instead of creating one (e.g. a pool shared by
            many envs); the env never closes it.
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: weight overrides for the reward components.

    Example:
        >>> env = agentgym.make("agentgym/Code-v0", backend="local")  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
        >>> env.step("```python\ndef f(x):\n    return x\n```")  # doctest: +SKIP
    """

    # ``tests`` (partial passes) is paid only when the episode succeeds (envs.shaping):
    # failed episodes earn no more than a prompt failure; shaping="dense" opts out.
    process_components: ClassVar[frozenset[str]] = frozenset({"tests"})
    reward_spec = RewardSpec(
        {
            "format": "-0.1 when the reply has no code or the code is not valid Python",
            "tests": "fraction of the tests newly passing, compared with the best turn so far",
            "outcome": "1.0 when every test passes",
        }
    )

    def __init__(
        self,
        tasks: str | os.PathLike | Sequence[Mapping[str, Any]] | None = None,
        *,
        backend: str = "auto",
        limits: Any = None,
        sandbox: Any = None,
        warm: bool = True,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
        shaping: str = "gated",
        shaping_cap: float | None = None,
    ) -> None:
        super().__init__(
            render_mode=render_mode,
            reward_weights=reward_weights,
            shaping=shaping,
            shaping_cap=shaping_cap,
        )
        from agentgym.sandbox.types import Limits

        if tasks is None or isinstance(tasks, (str, os.PathLike)):
            self.tasks = load_tasks(tasks)
        else:
            self.tasks = [CodeTask.from_record(r, f"tasks[{i}]") for i, r in enumerate(tasks)]
            if not self.tasks:
                raise ConfigError("tasks is empty; pass a JSONL path, task mappings or None")
        if isinstance(limits, Limits):
            self.limits = limits
        elif limits is None or isinstance(limits, Mapping):
            self.limits = Limits.from_kwargs(**{**DEFAULT_LIMITS, **dict(limits or {})})
        else:
            raise ConfigError(f"limits must be a Limits, a mapping or None, got {limits!r}")
        if sandbox is None and backend not in ("auto", "bwrap", "docker", "local", "pool"):
            raise ConfigError(
                f"unknown sandbox backend {backend!r}; choose auto, bwrap, docker, local or pool"
            )
        self.backend = "auto" if backend == "pool" else backend
        self.warm = warm
        self._sandbox = sandbox
        self._owns_sandbox = sandbox is None and not warm
        self._by_id = {t.task_id: i for i, t in enumerate(self.tasks)}
        self.task: CodeTask | None = None
        self._best = 0
        self._solved = False

    # ----------------------------------------------------------------- api
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Pose a task chosen by the seed or by ``options["task"]``."""
        super().reset(seed=seed)
        self.task = self._choose_task(dict(options or {}))
        self._best = 0
        self._solved = False
        t = self.task
        text = (
            f"{t.prompt.rstrip()}\n\nWrite a complete Python program that defines "
            f"`{t.entry_point}`. Reply with the code in a ```python fenced block."
        )
        info = {"task_id": t.task_id, "entry_point": t.entry_point, "n_tests": len(t.tests)}
        return self.begin([system(SYSTEM_PROMPT), user(text)], info)

    def step(self, action: str) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Run the submitted code against the tests; malformed replies never raise."""
        if self.task is None:
            raise gymnasium.error.ResetNeeded("call reset() before step() on Code")
        text = action if isinstance(action, str) else ""
        zero = {"format": 0.0, "tests": 0.0, "outcome": 0.0}
        if self._solved:
            msg = "The task is already solved. Call reset() for a new one."
            return self.turn([user(msg)], zero, terminated=True, action=text)
        code = extract_code(text)
        problem = _syntax_problem(code, text)
        if problem is not None:
            info = {
                "tests_passed": 0,
                "tests_total": len(self.task.tests),
                "failed": [],
                "timed_out": False,
                "oom": False,
            }
            return self.turn([user(problem)], {**zero, "format": -0.1}, action=text, info=info)
        assert code is not None  # _syntax_problem rejects None
        report = self._run(code)
        passed = sum(o.passed for o in report.outcomes)
        total = len(self.task.tests)
        parts = dict(zero)
        parts["tests"] = max(0, passed - self._best) / total
        self._best = max(self._best, passed)
        solved = passed == total
        if solved:
            parts["outcome"] = 1.0
            self._solved = True
        info = {
            "tests_passed": passed,
            "tests_total": total,
            "failed": [o.name for o in report.outcomes if not o.passed],
            "timed_out": bool(report.result and report.result.timed_out),
            "oom": bool(report.result and report.result.oom),
        }
        return self.turn(
            [user(self._feedback(report, passed, total))],
            parts,
            terminated=solved,
            outcome=1.0 if solved else 0.0,
            success=solved,
            action=text,
            info=info,
        )

    def close(self) -> None:
        """Close the sandbox if this env created it."""
        if self._sandbox is not None and self._owns_sandbox:
            self._sandbox.close()
            self._sandbox = None
        super().close()

    # ------------------------------------------------------------ internals
    def _choose_task(self, options: dict[str, Any]) -> CodeTask:
        drawn = int(self.np_random.integers(len(self.tasks)))  # drawn always: same stream
        task = options.get("task")
        if task is None:
            return self.tasks[drawn]
        if isinstance(task, Mapping):
            return CodeTask.from_record(task, "options['task']")
        if isinstance(task, str) and task in self._by_id:
            return self.tasks[self._by_id[task]]
        if isinstance(task, int) and not isinstance(task, bool) and 0 <= task < len(self.tasks):
            return self.tasks[task]
        raise ConfigError(
            f"options['task'] must be an index in 0..{len(self.tasks) - 1}, a task_id "
            f"(e.g. {self.tasks[0].task_id!r}) or a task mapping; got {task!r}"
        )

    def _get_sandbox(self) -> Any:
        if self._sandbox is None:
            import agentgym.sandbox as sb

            lim = {k: getattr(self.limits, k) for k in self.limits.__dataclass_fields__}
            if self.warm:
                self._sandbox = sb.shared_pool(
                    self.backend, disk_mb=self.limits.disk_mb, network=self.limits.network
                )
            else:
                self._sandbox = sb.get_sandbox(self.backend, **lim)
        return self._sandbox

    def _run(self, code: str) -> Any:
        assert self.task is not None
        try:
            return self._get_sandbox().run_tests(
                code,
                self.task.tests,
                limits=self.limits,
                setup=_prompt_helpers(self.task.prompt, self.task.entry_point),
                live_objects=self.task.live_objects,
            )
        except SandboxUnavailable:
            raise
        except SandboxError as e:  # the sandbox broke, not the agent's code
            raise SandboxUnavailable(
                f"the sandbox failed while testing a submission (not the agent's fault): {e}"
            ) from e

    def _feedback(self, report: Any, passed: int, total: int) -> str:
        assert self.task is not None
        if passed == total:
            return f"All {total} tests passed. The task is solved."
        lines = [f"{passed}/{total} tests passed."]
        res = report.result
        if res is not None and res.timed_out:
            lines.append(f"Your program hit the time limit ({self.limits.wall_time_s:g} s).")
        elif res is not None and res.oom:
            lines.append(f"Your program ran out of memory ({self.limits.memory_mb} MiB).")
        failed = [o for o in report.outcomes if not o.passed]
        if any(f"name '{self.task.entry_point}' is not defined" in (o.error or "") for o in failed):
            lines.append(f"Your code must define `{self.task.entry_point}`.")
        shown: dict[str, str] = {}  # error text -> first test that showed it
        for o in failed[:_SHOWN_FAILURES]:
            desc = _trim(self.task.descriptions.get(o.name, o.name), 200)
            error = _trim_trace(o.error or "failed")
            detail = f"(same error as {shown[error]})" if error in shown else error
            shown.setdefault(error, o.name)
            lines.append(f"\nFAILED {o.name}: {desc}\n{detail}")
        if len(failed) > _SHOWN_FAILURES:
            lines.append(f"\n({len(failed) - _SHOWN_FAILURES} more failing tests not shown)")
        if res is not None and res.stdout.strip():
            lines.append(f"\nYour program printed:\n{_trim(res.stdout.strip(), 500)}")
        return "\n".join(lines)


def _syntax_problem(code: str | None, text: str) -> str | None:
    """A message saying why ``code`` cannot run, or None if it compiles."""
    if code is None:
        return "No code found. Reply with your program in a ```python fenced block."
    try:
        compile(code, "<submission>", "exec", dont_inherit=True)
    except SyntaxError as e:
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        hint = "" if "```" in text else " Put your program in a ```python fenced block."
        return f"Your code is not valid Python ({e.msg}, {where}). Nothing was run.{hint}"
    except (ValueError, RecursionError, MemoryError, OverflowError) as e:
        return f"Your code could not be compiled ({type(e).__name__}: {e}). Nothing was run."
    return None


def _trim(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


_TEST_FRAME_RE = re.compile(r'^  File "<test:[^>]*>", line \d+, in <module>$')


def _trim_trace(error: str) -> str:
    """The last lines of a traceback, without the frame that only calls ``check``."""
    lines, skip = [], False
    for line in error.rstrip().splitlines():
        if _TEST_FRAME_RE.match(line):
            skip = True
            continue
        if skip and line.startswith("    "):
            continue
        skip = False
        lines.append(line)
    if len(lines) >= 2 and lines[0].startswith("Traceback") and not lines[1].startswith("  "):
        lines = lines[1:]  # no frames left worth showing
    if len(lines) > _TRACE_LINES:
        lines = ["  ...", *lines[-_TRACE_LINES:]]
    text = "\n".join(lines)
    return text if len(text) <= _TRACE_CHARS else "..." + text[-(_TRACE_CHARS - 3) :]


def register_envs() -> None:
    """Register ``agentgym/Code-v0``."""
    register(
        "agentgym/Code-v0",
        entry_point="agentgym.envs.code:Code",
        max_turns=4,
        kwargs={},
    )
