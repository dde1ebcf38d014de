"""Countdown: combine the given numbers with + - * / to reach a target.

``agentgym/Countdown-v0`` (``max_turns=3``) draws 4 to 6 numbers and a target
from the seed. Every task is solvable by construction: the target is built
by combining some of the numbers (at least two, usually all) with random
operations whose intermediate results are positive whole numbers.
``options={"task": {"numbers": [...], "target": n}}`` poses your own task.

The answer is one arithmetic expression, in ``<answer>...</answer>`` (the
last one counts) or bare, e.g. ``<answer>(25 - 5) * 4</answer>``. Rules:

- only the given numbers, each at most once (not all need be used);
- ``+ - * /`` and parentheses; no unary minus, powers or other syntax
  (``×``, ``÷`` and ``−`` are read as ``*``, ``/`` and ``-``);
- a trailing ``= <number>`` is ignored (``25 * 4 = 100``);
- arithmetic is exact on rationals: ``/`` may give a fraction that later
  steps use (``(1 + 1/2) * 4`` is 6); only the final value is compared with
  the target, exactly. Division by zero is an invalid expression.

The first valid expression ends the episode with its score. An invalid one
(syntax, a number not given, a number used too often, too long) gets a
message saying exactly what is wrong and a ``format`` penalty, and the agent
may try again until the turn limit (which then truncates the episode).

Reward components (turn reward = weighted sum, all weights 1 by default):

| component | value                                                                  |
|-----------|------------------------------------------------------------------------|
| `format`  | -0.1 (`-format_penalty`) for an invalid expression                     |
| `outcome` | on the answer turn: 1.0 for exactly the target, else                   |
|           | `partial_credit * max(0, 1 - abs(value - target) / target)` (default   |
|           | `partial_credit` 0: a miss scores 0)                                   |

``info["success"]`` is True for an exact answer. By default a failed episode
earns at most 0, what a wrong first answer earns. ``partial_credit=0.5`` (an
explicit opt-in) pays near misses; that is gameable: answering with the given
number closest to the target, no search at all, then earns 0.21 an episode
on average on the default tasks (0.13 for the first number alone; seeds
0-199), which GRPO reinforces whenever exact solutions are rare.

Difficulty knobs (constructor kwargs): ``num_numbers`` (int or ``(lo, hi)``),
``number_range`` (``(lo, hi)`` of the drawn numbers) and ``target_range``.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import gymnasium
import numpy as np

from agentgym.core import AgentEnv, Message, system, user
from agentgym.errors import ActionParseError, ConfigError
from agentgym.registry import register
from agentgym.rewards import RewardSpec

from ._parsing import extract_tag, has_open_tag, preview

__all__ = ["Countdown", "CountdownTask", "evaluate_expression", "make_task", "register_envs"]

MAX_EXPRESSION = 200
_TRANSLATE = str.maketrans({"×": "*", "∗": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_INT_RE = re.compile(r"\s*\d+\s*")
_MAX_ATTEMPTS = 2000


# ------------------------------------------------------------- verification
def evaluate_expression(text: str, numbers: Sequence[int]) -> Fraction:
    """Check and evaluate an answer exactly.

    Args:
        text: the expression, e.g. ``"(25 - 5) * 4"``.
        numbers: the numbers the expression may use, each at most once.

    Returns:
        The exact value.

    Raises:
        ActionParseError: the expression is malformed, uses a number that
            was not given or too often, or divides by zero.

    Example:
        >>> evaluate_expression("(25 - 5) * 4", [4, 5, 25, 7])
        Fraction(80, 1)
    """
    expr = _strip_equals(text.translate(_TRANSLATE).strip())
    if not expr:
        raise ActionParseError("The expression is empty.")
    if len(expr) > MAX_EXPRESSION:
        raise ActionParseError(
            f"The expression is too long ({len(expr)} characters; at most {MAX_EXPRESSION})."
        )
    try:
        tree = ast.parse(expr, mode="eval").body
    except (SyntaxError, ValueError) as e:
        raise ActionParseError(
            f"Could not parse {preview(expr)} as arithmetic ({getattr(e, 'msg', e)}). "
            "Use the numbers, + - * / and parentheses."
        ) from None
    used = _leaves(tree, expr)
    _check_usage(used, numbers)
    return _eval(tree)


def _strip_equals(expr: str) -> str:
    """Drop a ``= <number>`` side; other uses of ``=`` are left to fail parsing."""
    if expr.count("=") != 1:
        return expr
    left, right = expr.split("=")
    if _INT_RE.fullmatch(right) or not right.strip():
        return left.strip()
    if _INT_RE.fullmatch(left):
        return right.strip()
    return expr


def _leaves(node: ast.AST, source: str) -> list[int]:
    """The integers an expression uses; any disallowed syntax raises."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _leaves(node.left, source) + _leaves(node.right, source)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        literal = ast.get_source_segment(source, node) or ""
        if not literal.isascii() or not literal.isdigit():
            raise ActionParseError(
                f"Write numbers in plain decimal digits, not {preview(literal)}."
            )
        return [node.value]
    if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
        raise ActionParseError(
            f"{ast.unparse(node)} is not one of the given numbers; use whole numbers as given."
        )
    if isinstance(node, ast.UnaryOp):
        raise ActionParseError("Signs (unary + or -) are not allowed; use the numbers as given.")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        raise ActionParseError("Powers (**) are not allowed; use only + - * /.")
    raise ActionParseError(
        f"{preview(ast.unparse(node))} is not allowed; use only the numbers, + - * / "
        "and parentheses."
    )


def _check_usage(used: list[int], numbers: Sequence[int]) -> None:
    have, want = Counter(int(n) for n in numbers), Counter(used)
    given = " ".join(str(n) for n in numbers)
    for n, k in want.items():
        if have[n] == 0:
            shown = str(n) if n < 10**12 else preview(str(n))
            raise ActionParseError(f"{shown} is not one of the numbers ({given}).")
        if k > have[n]:
            times = "once" if have[n] == 1 else f"{have[n]} times"
            raise ActionParseError(f"{n} is used {k} times but given only {times} ({given}).")


def _eval(node: ast.AST) -> Fraction:
    if not isinstance(node, ast.BinOp):  # _leaves allowed only int constants besides
        return Fraction(node.value)  # type: ignore[attr-defined]
    a, b = _eval(node.left), _eval(node.right)
    op = _BINOPS[type(node.op)]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ActionParseError("Division by zero.")
    return a / b


def score(value: Fraction, target: int, partial_credit: float = 0.0) -> float:
    """1.0 for the exact target, else ``partial_credit * max(0, 1 - |value - target| / target)``."""
    if value == target:
        return 1.0
    closeness = 1 - abs(value - target) / abs(target) if target else Fraction(0)
    return float(partial_credit * max(Fraction(0), closeness))


# --------------------------------------------------------------- generation
@dataclass(frozen=True)
class CountdownTask:
    """A task: numbers, a target, and one expression that reaches it."""

    numbers: tuple[int, ...]
    """The numbers the agent may use, each at most once."""
    target: int
    """The value to reach."""
    solution: str = field(default="", repr=False)
    """One expression reaching the target ("" when unknown)."""


def _combine(rng: np.random.Generator, values: list[int]) -> tuple[int, str]:
    """Fold ``values`` with random valid operations (positive whole intermediates)."""
    pool = [(v, str(v)) for v in values]
    while len(pool) > 1:
        i, j = (int(k) for k in rng.choice(len(pool), size=2, replace=False))
        (a, ea), (b, eb) = pool[i], pool[j]
        ops = ["+", "*"]
        if a > b:
            ops.append("-")
        if b > 1 and a % b == 0:
            ops.append("/")
        op = ops[int(rng.integers(len(ops)))]
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]
        expr = f"({ea} {op} {eb})"
        pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [(value, expr)]
    value, expr = pool[0]
    return value, expr[1:-1] if expr.startswith("(") else expr


def make_task(
    rng: np.random.Generator,
    num_numbers: tuple[int, int] = (4, 6),
    number_range: tuple[int, int] = (1, 25),
    target_range: tuple[int, int] = (10, 250),
) -> CountdownTask:
    """Draw a solvable task: numbers, then a target made by combining them.

    Raises:
        ConfigError: no target in ``target_range`` was found (impossible settings).
    """
    for _ in range(_MAX_ATTEMPTS):
        n = int(rng.integers(num_numbers[0], num_numbers[1] + 1))
        numbers = [int(x) for x in rng.integers(number_range[0], number_range[1] + 1, size=n)]
        k = int(rng.integers(max(2, n - 2), n + 1))
        chosen = [numbers[i] for i in rng.permutation(n)[:k]]
        target, expr = _combine(rng, chosen)
        if target_range[0] <= target <= target_range[1] and target not in numbers:
            return CountdownTask(tuple(numbers), target, expr)
    raise ConfigError(
        f"no target in {target_range} found for {num_numbers} numbers in {number_range} "
        f"after {_MAX_ATTEMPTS} draws; widen target_range or number_range"
    )


def _pair(value: int | Sequence[int], name: str, low: int) -> tuple[int, int]:
    lo, hi = (value, value) if isinstance(value, int) else tuple(value)
    if not (isinstance(lo, int) and isinstance(hi, int)) or not low <= lo <= hi:
        raise ConfigError(f"{name} must be an int >= {low} or a pair lo <= hi, got {value!r}")
    return int(lo), int(hi)


# ---------------------------------------------------------------------- env
class Countdown(AgentEnv):
    """Reach the target with the given numbers; see the module docstring.

    Args:
        num_numbers: how many numbers (int, or ``(lo, hi)`` drawn uniformly).
        number_range: ``(lo, hi)`` of the numbers drawn.
        target_range: ``(lo, hi)`` of the target.
        partial_credit: the most a non-exact answer can score (default 0, off;
            a positive value pays near misses, which is gameable).
        format_penalty: magnitude of the ``format`` component.
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: per-component weight overrides.

    Example:
        >>> env = Countdown()
        >>> obs, _ = env.reset(options={"task": {"numbers": [25, 5, 4, 7], "target": 80}})
        >>> env.step("<answer>(25 - 5) * 4</answer>")[1]
        1.0
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(
        {
            "format": "-format_penalty (default -0.1) for an invalid expression",
            "outcome": "1.0 for the exact target, else partial_credit (default 0) * closeness "
            "(max(0, 1 - |value - target| / target))",
        }
    )

    def __init__(
        self,
        num_numbers: int | Sequence[int] = (4, 6),
        number_range: Sequence[int] = (1, 25),
        target_range: Sequence[int] = (10, 250),
        partial_credit: float = 0.0,
        format_penalty: float = 0.1,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode, reward_weights=reward_weights)
        self.num_numbers = _pair(num_numbers, "num_numbers", 2)
        self.number_range = _pair(tuple(number_range), "number_range", 1)
        self.target_range = _pair(tuple(target_range), "target_range", 1)
        if not 0.0 <= partial_credit < 1.0:
            raise ConfigError(f"partial_credit must be in [0, 1), got {partial_credit}")
        self.partial_credit = float(partial_credit)
        self.format_penalty = float(format_penalty)
        # Fail at construction, not mid-run, if the settings cannot produce a task.
        make_task(np.random.default_rng(0), *self._knobs())
        self.task: CountdownTask | None = None
        self._done = False

    def _knobs(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return self.num_numbers, self.number_range, self.target_range

    @property
    def solution(self) -> str:
        """One expression that reaches the target (hidden from the agent)."""
        return self.task.solution if self.task else ""

    def _task_from(self, options: Mapping[str, Any]) -> CountdownTask:
        task = options.get("task")
        if task is None:
            return make_task(self.np_random, *self._knobs())
        if isinstance(task, CountdownTask):
            return task
        try:
            numbers = tuple(int(n) for n in task["numbers"])
            target = int(task["target"])
            if not numbers or min(numbers) < 0 or target < 1:
                raise ValueError("numbers must be non-negative and the target positive")
            return CountdownTask(numbers, target, str(task.get("solution", "")))
        except (TypeError, KeyError, ValueError) as e:
            raise ConfigError(
                f'options["task"] must be {{"numbers": [ints], "target": int}}, got {task!r}: {e}'
            ) from e

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Draw a task from the seed (or take ``options["task"]``)."""
        super().reset(seed=seed)
        self.task = self._task_from(options or {})
        self._done = False
        rules = (
            "Countdown. Combine some of the given numbers with + - * / and parentheses to "
            "make exactly the target. Use each number at most once; you need not use all. "
            "Division may give fractions. Reply with the expression, e.g. "
            "<answer>(25 - 5) * 4</answer>."
        )
        numbers = " ".join(str(n) for n in self.task.numbers)
        text = f"Numbers: {numbers}\nTarget: {self.task.target}"
        info = {"numbers": list(self.task.numbers), "target": self.task.target}
        return self.begin([system(rules), user(text)], info)

    def parse_answer(self, text: str) -> Fraction:
        """The exact value of the expression in ``text``.

        Raises:
            ActionParseError: no valid expression (see :func:`evaluate_expression`).
        """
        inner = extract_tag(text, "answer")
        if inner is None and has_open_tag(text, "answer"):
            raise ActionParseError("The <answer> tag is not closed; write <answer>...</answer>.")
        numbers = self.task.numbers if self.task else ()
        return evaluate_expression(text if inner is None else inner, numbers)

    def step(self, action: str) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Score the answer; an invalid one gets a message and a penalty, and a retry."""
        if self.task is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        text = action if isinstance(action, str) else str(action)
        if self._done:
            msg = user("The answer was already given; call reset() to play again.")
            return self.turn([msg], {}, terminated=True, action=text)
        try:
            value = self.parse_answer(text)
        except ActionParseError as e:
            why = f"Invalid answer. {e} Try again, e.g. <answer>(25 - 5) * 4</answer>."
            return self.turn([user(why)], {"format": -self.format_penalty}, action=text)
        self._done = True
        target = self.task.target
        outcome = score(value, target, self.partial_credit)
        shown = str(value) if value.denominator == 1 else f"{value} (~{float(value):.4g})"
        if value == target:
            line = f"Your expression makes {shown}. Exactly the target!"
        else:
            off = abs(value - target)
            off_s = str(off) if off.denominator == 1 else f"{float(off):.4g}"
            line = f"Your expression makes {shown}; the target was {target} (off by {off_s})."
        return self.turn(
            [user(f"{line} Score: {outcome:.2f}.")],
            {"outcome": outcome},
            terminated=True,
            outcome=outcome,
            success=value == target,
            action=text,
            info={"value": shown},
        )


def register_envs() -> None:
    """Register ``agentgym/Countdown-v0`` (idempotent)."""
    register(
        "agentgym/Countdown-v0",
        entry_point="agentgym.envs.countdown:Countdown",
        max_turns=3,
        kwargs={"num_numbers": [4, 6], "number_range": [1, 25], "target_range": [10, 250]},
    )
