"""SQL: answer questions about a generated shop database with a SQL query.

``agentgym/SQL-v0`` builds an in-memory SQLite database from the seed (tables
``customers``, ``employees``, ``products``, ``orders`` and ``order_items``
with foreign keys and realistic values; see :mod:`agentgym.envs.sql_data`)
and asks a question with a gold query from one of 14 templates (filters,
joins, aggregates, group by / having, order by / limit, subqueries).
``options={"task": k}`` picks template ``k`` (the database and the template's
parameters still come from the seed); ``options={"task": {"question": ...,
"gold_sql": ...}}`` poses your own question on the seed's database.

The agent may explore with ``run_sql(query)`` — read-only, one statement, at
most ``max_rows`` rows shown, ``time_limit_s`` per query — and answers with
one SELECT query as ``<answer>SELECT ...</answer>``.

Read-only, so nothing the agent writes reaches the verdict: every query the
agent sends (``run_sql`` and the answer alike) runs with ``PRAGMA
query_only`` on and an authorizer that allows only reads (SELECT, reading
columns, calling built-in functions, recursive CTEs) and denies everything
else: INSERT, UPDATE, DELETE, DROP, CREATE (temporary tables too), ALTER,
ATTACH, PRAGMA, transactions. A refused statement is a tool error (or a
failed answer) and changes nothing; extensions cannot be loaded. The gold
result is computed at reset, before the agent acts
(``tests/envs/test_sql.py::test_agent_writes_never_reach_the_verdict``).

Outcome (execution match): the answer query's result equals the gold
query's as a multiset of rows, or as a list when the gold query orders
(ORDER BY). Numbers compare after rounding to 6 decimals (``2`` equals
``2.0``); a result with the same rows up to a permutation of columns counts.

Reward components: the :class:`~agentgym.envs.tool_env.ToolEnv` ones
(``format`` -0.1, ``tool_error`` -0.05 x fraction of calls that failed,
``outcome`` 1.0 on an execution match, and the process rewards
``well_formed`` +0.02 and ``tool_ok`` +0.05 x fraction of calls that ran —
for ``run_sql``, a query that runs) and two more process rewards:

- ``valid_sql``: +0.02 in a turn where a ``run_sql`` query had valid syntax.
- ``right_tables``: +0.1 the first time a ``run_sql`` query reads exactly the
  gold query's tables (read through SQLite authorizer callbacks).

Process rewards are reported every turn in ``info["reward_components"]`` but
paid only on the turn of a correct answer, at most ``shaping_cap`` (0.2) per
episode (:mod:`agentgym.envs.shaping`), so a failed episode earns at most 0,
what a wrong first answer earns. ``shaping="dense"`` pays them every turn:
farmable (one valid query per turn for the 8 turns, never answering, earns
+0.72).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentgym.envs.sql_data import TEMPLATES, Question, build_database, draw_question
from agentgym.envs.tool_env import TOOL_REWARDS, Score, ToolEnv
from agentgym.errors import ConfigError, ToolError
from agentgym.registry import register
from agentgym.rewards import RewardSpec
from agentgym.tools import Tool, ToolCall, ToolResult, tool

__all__ = ["SQLEnv", "QueryResult", "ReadOnlyDB", "results_match", "register_envs"]

_SYNTAX_ERRORS = ("syntax error", "incomplete input", "unrecognized token")
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
_ALLOWED.add(getattr(sqlite3, "SQLITE_RECURSIVE", 33))


@dataclass(frozen=True)
class QueryResult:
    """Rows of a read-only query and the tables it read."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    tables: frozenset[str]
    more: bool
    """More rows existed than were fetched."""


class ReadOnlyDB:
    """A SQLite connection that only runs single read-only statements, with limits.

    Args:
        conn: the (in-memory) database; switched to ``query_only``.
        time_limit_s: wall seconds per query before it is interrupted.
    """

    def __init__(self, conn: sqlite3.Connection, time_limit_s: float = 2.0) -> None:
        self.conn = conn
        self.conn.execute("PRAGMA query_only = ON")
        if hasattr(conn, "setlimit"):
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)
        self.time_limit_s = time_limit_s

    def query(self, sql: str, max_rows: int) -> QueryResult:
        """Run one read-only statement and fetch at most ``max_rows`` rows.

        Raises:
            sqlite3.Error: syntax errors, unknown names, writes (not authorized),
                interrupted (time limit), several statements.
        """
        tables: set[str] = set()
        denied: list[str] = []

        def authorize(action: int, arg1: Any, arg2: Any, db: Any, src: Any) -> int:
            if action not in _ALLOWED:
                denied.append(str(action))
                return sqlite3.SQLITE_DENY
            if action == sqlite3.SQLITE_READ and arg1 and not str(arg1).startswith("sqlite_"):
                tables.add(str(arg1).lower())
            return sqlite3.SQLITE_OK

        deadline = time.monotonic() + self.time_limit_s
        self.conn.set_authorizer(authorize)
        self.conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            cur = self.conn.execute(sql)
            rows = cur.fetchmany(max_rows + 1)
            columns = tuple(d[0] for d in cur.description or ())
        except sqlite3.DatabaseError as e:
            if "interrupted" in str(e):
                raise sqlite3.OperationalError(
                    f"query interrupted: it ran longer than {self.time_limit_s:g} s"
                ) from None
            if denied or "not authorized" in str(e):
                raise sqlite3.OperationalError(
                    "not authorized: the database is read-only (one SELECT statement only)"
                ) from None
            raise
        finally:
            self.conn.set_authorizer(None)
            self.conn.set_progress_handler(None, 0)
        return QueryResult(columns, rows[:max_rows], frozenset(tables), len(rows) > max_rows)


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return round(float(v), 6) + 0.0
    return v


def results_match(got: Sequence[tuple], gold: Sequence[tuple], ordered: bool) -> bool:
    """Execution match: equal rows (as a multiset, or in order), up to column order."""
    a = [tuple(_norm(v) for v in r) for r in got]
    b = [tuple(_norm(v) for v in r) for r in gold]
    if len(a) != len(b) or any(len(r) != len(b[0]) for r in a if b):
        return False
    if (a == b) if ordered else (Counter(a) == Counter(b)):
        return True
    a2 = [tuple(sorted(r, key=repr)) for r in a]
    b2 = [tuple(sorted(r, key=repr)) for r in b]
    return (a2 == b2) if ordered else (Counter(a2) == Counter(b2))


def _format(res: QueryResult) -> str:
    if not res.columns:
        return "(no result set)"
    lines = [" | ".join(res.columns)]
    lines += [" | ".join("NULL" if v is None else str(v) for v in r) for r in res.rows]
    n = len(res.rows)
    lines.append(f"(first {n} rows; more not shown)" if res.more else f"({n} row{'s' * (n != 1)})")
    return "\n".join(lines)


def _clean_query(text: str) -> str:
    m = re.fullmatch(r"```(?:sql)?\s*(.*?)\s*```", text.strip(), re.DOTALL | re.IGNORECASE)
    return (m.group(1) if m else text).strip().rstrip(";").strip()


class SQLEnv(ToolEnv):
    """Text-to-SQL with an exploratory, read-only ``run_sql`` tool.

    Args:
        max_rows: rows shown per ``run_sql`` result.
        time_limit_s: wall seconds per query.
        **kwargs: :class:`~agentgym.envs.tool_env.ToolEnv` arguments.
    """

    reward_spec = RewardSpec(
        {
            **TOOL_REWARDS,
            "valid_sql": "+0.02 in a turn where a run_sql query had valid syntax",
            "right_tables": "+0.1 the first time a run_sql query reads exactly the gold tables",
        }
    )
    process_components = frozenset({"well_formed", "tool_ok", "valid_sql", "right_tables"})
    intro = (
        "You answer questions about a SQLite database by writing SQL. Explore it with "
        "run_sql (read-only) as needed."
    )
    answer_hint = "one SQLite SELECT query whose result answers the question"
    answer_limit_rows = 10_000

    def __init__(self, max_rows: int = 20, time_limit_s: float = 2.0, **kwargs: Any) -> None:
        if max_rows < 1 or time_limit_s <= 0:
            raise ConfigError(
                f"max_rows must be >= 1 and time_limit_s > 0, got {max_rows}, {time_limit_s}"
            )
        self.max_rows, self.time_limit_s = max_rows, time_limit_s
        self.db: ReadOnlyDB | None = None
        self.question: Question | None = None
        self.schema_sql = ""
        self._gold: QueryResult | None = None
        self._valid_turn = -1
        self._tables_credited = False
        self._last_tables: frozenset[str] = frozenset()
        super().__init__(**kwargs)

    def make_tools(self) -> list[Tool]:
        """``run_sql``."""
        return [self.run_sql]

    def answer_rules(self) -> str:
        """The answer is a query, scored by executing it."""
        return (
            "Your query is executed and its result compared with the correct one "
            "(row order matters only when the question asks for an order)."
        )

    def new_task(self, options: dict[str, Any]) -> str:
        """Build the seed's database and draw (or take) the question."""
        if self.db is not None:
            self.db.conn.close()
        conn = build_database(self.np_random)
        self.schema_sql = "\n".join(
            r[0] + ";" for r in conn.execute("SELECT sql FROM sqlite_master WHERE type='table'")
        )
        self.db = ReadOnlyDB(conn, self.time_limit_s)
        self._valid_turn, self._tables_credited = -1, False
        task = options.get("task")
        if isinstance(task, dict):
            if not {"question", "gold_sql"} <= set(task):
                raise ConfigError(f'options["task"] needs "question" and "gold_sql", got {task!r}')
            ordered = bool(re.search(r"\border\s+by\b", task["gold_sql"], re.IGNORECASE))
            self.question = Question(
                "custom", task["question"], task["gold_sql"], task.get("ordered", ordered)
            )
        elif task is None or (isinstance(task, int) and not isinstance(task, bool)):
            self.question = draw_question(self.np_random, self.db.conn, task)
        else:
            raise ConfigError(
                f'options["task"] must be a template index 0..{len(TEMPLATES) - 1} or a dict, '
                f"got {task!r}"
            )
        try:
            self._gold = self.db.query(self.question.gold_sql, self.answer_limit_rows)
        except sqlite3.Error as e:
            raise ConfigError(f"the gold query failed: {e}: {self.question.gold_sql}") from e
        return f"Database schema:\n{self.schema_sql}\n\nQuestion: {self.question.text}"

    def score_answer(self, answer: str) -> Score:
        """Execute the answer query and compare with the gold result."""
        assert self.db is not None and self._gold is not None and self.question is not None
        try:
            res = self.db.query(_clean_query(answer), self.answer_limit_rows)
        except (sqlite3.Error, ValueError) as e:
            return Score(0.0, False, f"Your query failed: {e}.")
        ok = results_match(res.rows, self._gold.rows, self.question.ordered)
        return Score.exact(ok, "Correct." if ok else "Incorrect: the result differs from the gold.")

    def on_tool_result(self, call: ToolCall, result: ToolResult) -> dict[str, float]:
        """``valid_sql`` once per turn, ``right_tables`` once per episode."""
        parts: dict[str, float] = {}
        syntax_ok = result.ok or not any(s in result.content for s in _SYNTAX_ERRORS)
        if syntax_ok and self._valid_turn != self._turns:
            self._valid_turn = self._turns
            parts["valid_sql"] = 0.02
        gold_tables = self._gold.tables if self._gold is not None else None
        if result.ok and not self._tables_credited and self._last_tables == gold_tables:
            self._tables_credited = True
            parts["right_tables"] = 0.1
        return parts

    @tool
    def run_sql(self, query: str) -> str:
        """Run one read-only SQL query on the database and show the result.

        Args:
            query: a single SQLite SELECT statement.
        """
        assert self.db is not None
        self._last_tables = frozenset()
        try:
            res = self.db.query(_clean_query(query), self.max_rows)
        except (sqlite3.Error, ValueError) as e:
            raise ToolError(f"{type(e).__name__}: {e}") from None
        self._last_tables = res.tables
        return _format(res)

    def close(self) -> None:
        """Close the database."""
        if self.db is not None:
            self.db.conn.close()
            self.db = None
        super().close()


def register_envs() -> None:
    """Register ``agentgym/SQL-v0``."""
    register(
        "agentgym/SQL-v0",
        entry_point="agentgym.envs.sql:SQLEnv",
        max_turns=8,
        kwargs={"max_rows": 20},
    )
