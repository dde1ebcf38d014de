r"""MathTools: arithmetic and word problems solved with a calculator and Python.

``agentgym/MathTools-v0`` generates a problem from the seed at the chosen
difficulty (kwarg ``difficulty``: ``"easy"``, ``"medium"`` or ``"hard"``):
half arithmetic expressions, half word problems, every answer an exact
rational number. ``options={"task": n}`` picks problem ``n`` independently of
the seed; ``options={"task": {"question": ..., "answer": "7/2"}}`` poses your own.

Tools:

- ``calculator(expression)``: exact arithmetic on rationals (a safe AST
  evaluator, no ``eval``): ``+ - * / // % **`` (``^`` also means power),
  parentheses, ``abs``/``min``/``max``; prints ``p/q (~decimal)``.
- ``python(code)``: runs a program in the sandbox (``agentgym.sandbox``,
  created on first use, closed by ``env.close()``) and returns its output.
  If no sandbox backend works, :class:`~agentgym.errors.SandboxUnavailable`
  propagates out of ``step`` (an infrastructure error, not a reward of 0).
  ``python_tool=False`` leaves the tool out.

Answer checking (``<answer>...</answer>``) is exact on rationals. Accepted
forms: integers (``-12``, ``1,234``), decimals (``0.5``, ``.5``, ``1e3``),
fractions (``7/2``), mixed numbers (``3 1/2``), unicode fractions (``½``,
``3½``), LaTeX (``\frac{7}{2}``, ``\boxed{...}``, ``$...$``), a leading ``$``
and a trailing ``%`` (divides by 100) or ``.``. A decimal also counts when the
exact answer has no finite decimal form and the decimal has at least 3
places and equals the answer rounded to them (``0.333`` for ``1/3``).

Reward components: the :class:`~agentgym.envs.tool_env.ToolEnv` ones:
``format`` (-0.1 malformed turn), ``tool_error`` (-0.05 x fraction of calls
that failed), ``outcome`` (1.0 for a correct final answer, else 0), and the
process rewards ``well_formed`` (+0.02) and ``tool_ok`` (+0.05 x fraction of
calls that ran), which are reported every turn but paid only on the turn of
a correct answer, at most ``shaping_cap`` (0.2) per episode. A failed episode
earns at most 0, what a wrong first answer earns. ``shaping="dense"`` pays
them every turn (farmable: one calculator call per turn for the 8 turns,
never answering, earns +0.56).

The verdict is out of the agent's reach: the gold answer is computed from the
seed at reset and kept in this process; the answer is read only from the
assistant's own ``<answer>`` tag, never from tool output; and ``python``
runs in a separate sandbox process whose only way back is its printed text,
shown to the agent as a tool message. A program that fails in any way it can
cause (an exception, ``os._exit``, killing its own process or process group,
a timeout, exhausting memory) is a tool error (``tool_error``, the episode
goes on), never an infrastructure error.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from agentgym.envs.tool_env import Score, ToolEnv
from agentgym.errors import ConfigError, ToolError
from agentgym.registry import register
from agentgym.tools import Tool, tool

__all__ = ["MathTools", "evaluate", "parse_number", "answers_match", "register_envs"]

DIFFICULTIES = ("easy", "medium", "hard")
_MAX_EXPR = 300
_MAX_BITS = 4096
_BINOPS: dict[type, Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: operator.mod,
}
_FUNCS: dict[str, Callable[..., Fraction]] = {"abs": abs, "min": min, "max": max}


# ------------------------------------------------------------- calculator
def evaluate(expression: str) -> Fraction:
    """Evaluate an arithmetic expression exactly.

    Raises:
        ToolError: the expression is too long, not arithmetic, divides by
            zero or makes a number too large.

    Example:
        >>> evaluate("1/3 + 2^2")
        Fraction(13, 3)
    """
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if len(text) > _MAX_EXPR:
        raise ToolError(f"expression too long ({len(text)} characters; at most {_MAX_EXPR})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ToolError(f"invalid expression at column {e.offset}: {e.msg}") from None
    return _eval(tree.body)


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is float:
        if not math.isfinite(node.value):
            raise ToolError("number too large")
        return Fraction(repr(node.value))  # the literal's decimal value, exactly
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_eval(node.left), _eval(node.right))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval(node.left), _eval(node.right)
        if b == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise ToolError("division by zero")
        return _check_size(_BINOPS[type(node.op)](a, b))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and node.args
        and not node.keywords
    ):
        args = [_eval(a) for a in node.args]
        if node.func.id == "abs" and len(args) != 1:
            raise ToolError("abs() takes exactly one argument")
        return Fraction(_FUNCS[node.func.id](*args))
    what = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
    raise ToolError(
        f"unsupported syntax {what!r}: use numbers, + - * / // % ** ^, parentheses, abs/min/max"
    )


def _power(base: Fraction, exp: Fraction) -> Fraction:
    if exp.denominator != 1:
        raise ToolError("only integer exponents are supported (results must be exact)")
    if (
        abs(exp) > 10_000
        or (base.numerator.bit_length() + base.denominator.bit_length()) * abs(exp.numerator)
        > 2 * _MAX_BITS
    ):
        raise ToolError("result too large")
    if base == 0 and exp < 0:
        raise ToolError("division by zero")
    return _check_size(base**exp.numerator)


def _check_size(v: Fraction) -> Fraction:
    if v.numerator.bit_length() > _MAX_BITS or v.denominator.bit_length() > _MAX_BITS:
        raise ToolError("result too large")
    return v


def show(v: Fraction) -> str:
    """``12`` for integers, ``7/2 (~3.5)`` otherwise."""
    if v.denominator == 1:
        return str(v.numerator)
    return f"{v.numerator}/{v.denominator} (~{float(v):.10g})"


# ---------------------------------------------------------------- answers
_VULGAR = {
    "½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅖": "2/5",
    "⅗": "3/5", "⅘": "4/5", "⅙": "1/6", "⅚": "5/6", "⅛": "1/8", "⅜": "3/8", "⅝": "5/8",
    "⅞": "7/8", "⅐": "1/7", "⅑": "1/9", "⅒": "1/10",
}  # fmt: skip
_FRAC_RE = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")
_MIXED_RE = re.compile(r"^(-?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_NUMBER_RE = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def parse_number(text: str) -> Fraction | None:
    """Read an answer as an exact rational (rules in the module docstring), or None."""
    s = text.strip().rstrip(".").strip()
    for pre, post in (("\\boxed{", "}"), ("$", "$"), ("\\(", "\\)")):
        if s.startswith(pre) and s.endswith(post) and len(s) > len(pre) + len(post):
            s = s[len(pre) : -len(post)].strip()
    if s.startswith("-$"):
        s = "-" + s[2:]
    s = s.lstrip("$").replace("\u00a0", " ").strip()
    scale = Fraction(1)
    if s.endswith("%"):
        s, scale = s[:-1].strip(), Fraction(1, 100)
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    for ch, frac in _VULGAR.items():
        if s.endswith(ch):
            head = s[: -len(ch)].strip()
            s = f"{head} {frac}" if head not in ("", "-") else f"{head}{frac}"
    value = _read_plain(s)
    return None if value is None else value * scale


def _read_plain(s: str) -> Fraction | None:
    m = _FRAC_RE.match(s)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        return Fraction(num, den) if den else None
    m = _MIXED_RE.match(s)
    if m:
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if den == 0:
            return None
        v = whole + Fraction(num, den)
        return -v if m.group(1) else v
    if _NUMBER_RE.match(s):
        if len(s) > 50:
            return None
        return Fraction(s)
    parts = s.split("/")
    if len(parts) == 2 and all(re.fullmatch(r"\s*-?\d+\s*", p) for p in parts):
        den = int(parts[1])
        return Fraction(int(parts[0]), den) if den else None
    return None


def answers_match(answer: str, gold: Fraction) -> bool:
    """Whether ``answer`` is ``gold`` (exactly, or as its rounding to >= 3 places)."""
    value = parse_number(answer)
    if value is None:
        return False
    if value == gold:
        return True
    if _terminates(gold):
        return False
    m = re.search(r"\.(\d+)", answer)
    places = len(m.group(1)) if m and "e" not in answer.lower() else 0
    return places >= 3 and abs(value - gold) <= Fraction(1, 2 * 10**places)


def _terminates(v: Fraction) -> bool:
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


# ---------------------------------------------------------------- problems
_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_ITEMS = ("apple", "marble", "sticker", "pencil", "coin", "stamp", "card", "shell")


def _expression(rng: np.random.Generator, difficulty: str) -> tuple[str, Fraction]:
    while True:  # redraw the rare expression that divides by zero
        text = _expression_text(rng, difficulty)
        try:
            value = evaluate(text)
        except ToolError:
            continue
        return f"Compute {text.replace('*', '×')}. Give the exact value.", value


def _expression_text(rng: np.random.Generator, difficulty: str) -> str:
    n_ops, hi, ops = {
        "easy": (int(rng.integers(1, 3)), 50, "+-*"),
        "medium": (int(rng.integers(2, 4)), 100, "+-*/"),
        "hard": (int(rng.integers(3, 6)), 500, "+-*/^"),
    }[difficulty]
    text = str(int(rng.integers(1, hi)))
    for _ in range(n_ops):
        op = ops[int(rng.integers(len(ops)))]
        right = str(int(rng.integers(2, 4) if op == "^" else rng.integers(1, hi)))
        if op == "^":
            if len(text) < 12:
                text = f"({text})^{right}" if " " in text else f"{text}^{right}"
            continue
        if difficulty != "easy" and " " in text and rng.random() < 0.4:
            text = f"({text})"
        text = f"{text} {op} {right}" if rng.random() < 0.6 else f"{right} {op} {text}"
    return text


def _word_problem(rng: np.random.Generator, difficulty: str) -> tuple[str, Fraction]:
    def r(lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1))

    name, item = _NAMES[r(0, len(_NAMES) - 1)], _ITEMS[r(0, len(_ITEMS) - 1)]
    kind = r(0, 2)
    if difficulty == "easy":
        if kind == 0:
            a, b = r(5, 40), r(2, 30)
            c = r(1, a + b)
            q = f"{name} has {a} {item}s, buys {b} more, then gives away {c}. How many {item}s does {name} have now?"  # noqa: E501
            return q, Fraction(a + b - c)
        if kind == 1:
            a, b = r(3, 12), r(2, 15)
            return f"A box holds {a} {item}s. How many {item}s are in {b} boxes?", Fraction(a * b)
        a, b = r(2, 12), r(2, 9)
        q = f"{name} shares {a * b} {item}s equally among {b} friends. How many does each get?"
        return q, Fraction(a)
    if difficulty == "medium":
        if kind == 0:
            cents, qty = r(105, 995), r(2, 6)
            bill = 10 * ((cents * qty) // 1000 + 1)
            q = (
                f"A notebook costs ${cents / 100:.2f}. {name} buys {qty} and pays with "
                f"${bill}. How many dollars of change does {name} get?"
            )
            return q, Fraction(bill) - Fraction(cents * qty, 100)
        if kind == 1:
            a, b, d = r(10, 40), r(5, 25), r(2, 5)
            n = a + b * d + r(10, 200)
            q = (
                f"A book has {n} pages. {name} reads {a} pages on Monday and {b} pages on "
                f"each of the next {d} days. How many pages are left?"
            )
            return q, Fraction(n - a - b * d)
        num, den, batches = r(1, 5), r(2, 8), r(2, 9)
        q = f"A recipe uses {num}/{den} cup of sugar per batch. How many cups do {batches} batches use?"  # noqa: E501
        return q, Fraction(num, den) * batches
    if kind == 0:
        a, b = r(2, 12), r(2, 12)
        q = (
            f"Pipe A fills a tank in {a} hours and pipe B fills it in {b} hours. "
            "Working together, how many hours do they take to fill the empty tank?"
        )
        return q, Fraction(a * b, a + b)
    if kind == 1:
        cost, up, off = r(20, 400), 5 * r(2, 12), 5 * r(1, 8)
        q = (
            f"A shop buys a lamp for ${cost}, marks the price up by {up}%, then sells it at a "
            f"{off}% discount off the marked price. What is the final price in dollars?"
        )
        return q, Fraction(cost) * Fraction(100 + up, 100) * Fraction(100 - off, 100)
    n, m = r(3, 12), r(40, 90)
    m2 = m + r(-3, 8)  # keeps the added number positive
    q = (
        f"The average of {n} numbers is {m}. After one more number is added, the average of "
        f"all {n + 1} numbers is {m2}. What number was added?"
    )
    return q, Fraction((n + 1) * m2 - n * m)


# --------------------------------------------------------------------- env
class MathTools(ToolEnv):
    """Math problems with a calculator and a sandboxed Python tool.

    Args:
        difficulty: ``"easy"``, ``"medium"`` or ``"hard"``.
        python_tool: offer the ``python`` tool (needs an agentgym.sandbox backend).
        sandbox: sandbox backend name for ``get_sandbox`` (``"auto"``, ``"local"``, ...).
        **kwargs: :class:`~agentgym.envs.tool_env.ToolEnv` arguments.
    """

    intro = "You solve math problems exactly. Use the tools to compute; do not guess."
    answer_hint = "the exact number (an integer, a fraction like 7/2, or a decimal)"

    def __init__(
        self,
        difficulty: str = "medium",
        python_tool: bool = True,
        sandbox: str = "auto",
        **kwargs: Any,
    ) -> None:
        if difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
        self.difficulty = difficulty
        self.python_tool = python_tool
        self.sandbox_backend = sandbox
        self._sandbox: Any = None
        self.question, self.gold = "", Fraction(0)
        super().__init__(**kwargs)

    def make_tools(self) -> list[Tool]:
        """Calculator, plus Python when ``python_tool``."""
        return [self.calculator, self.python] if self.python_tool else [self.calculator]

    def new_task(self, options: dict[str, Any]) -> str:
        """Generate (or take from ``options["task"]``) the problem."""
        task = options.get("task")
        if isinstance(task, dict):
            gold = parse_number(str(task.get("answer", "")))
            if gold is None or not isinstance(task.get("question"), str):
                raise ConfigError(
                    f'options["task"] needs "question" (str) and a numeric "answer", got {task!r}'
                )
            self.question, self.gold = task["question"], gold
            return self.question
        if task is None:
            rng = self.np_random
        elif isinstance(task, int) and not isinstance(task, bool) and task >= 0:
            rng = np.random.default_rng([task, DIFFICULTIES.index(self.difficulty)])
        else:
            raise ConfigError(f'options["task"] must be an int >= 0 or a dict, got {task!r}')
        gen = _expression if rng.random() < 0.5 else _word_problem
        self.question, self.gold = gen(rng, self.difficulty)
        return self.question

    def score_answer(self, answer: str) -> Score:
        """Exact match on rationals (see the module docstring)."""
        ok = answers_match(answer, self.gold)
        return Score.exact(ok, "Correct." if ok else f"Incorrect; the answer is {show(self.gold)}.")

    @tool
    def calculator(self, expression: str) -> str:
        """Evaluate an arithmetic expression exactly (rational numbers).

        Args:
            expression: e.g. "(3 + 4) * 2/3"; supports + - * / // % ** ^, parentheses,
                abs, min and max.
        """
        return show(evaluate(expression))

    @tool
    def python(self, code: str) -> str:
        """Run a Python program in a sandbox and return what it prints.

        Args:
            code: the program; print the values you need.
        """
        from agentgym.sandbox import Limits, shared_pool  # lazy: only envs that use Python

        if self._sandbox is None:  # the warm pool every env of this process shares
            self._sandbox = shared_pool(self.sandbox_backend)
        r = self._sandbox.run_python(code, limits=Limits(wall_time_s=5, memory_mb=256))
        out = r.stdout
        if r.stderr:
            out += ("\n" if out else "") + "stderr:\n" + r.stderr
        if r.timed_out:
            raise ToolError(f"the program timed out (5 s)\n{out}".rstrip())
        if r.oom:
            raise ToolError(f"the program ran out of memory (256 MB)\n{out}".rstrip())
        if r.exit_code != 0:
            raise ToolError(f"the program exited with code {r.exit_code}\n{out}".rstrip())
        return out or "(no output; print the values you need)"

    def close(self) -> None:
        """Let go of the shared sandbox pool (it is closed when the process exits)."""
        self._sandbox = None
        super().close()


def register_envs() -> None:
    """Register ``agentgym/MathTools-v0``."""
    register(
        "agentgym/MathTools-v0",
        entry_point="agentgym.envs.math_tools:MathTools",
        max_turns=8,
        kwargs={"difficulty": "medium"},
    )
