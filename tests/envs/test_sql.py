from __future__ import annotations

import json
import re
import sqlite3

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.envs.sql import ReadOnlyDB, SQLEnv, results_match
from agentgym.envs.sql_data import TEMPLATES, build_database
from agentgym.errors import ConfigError


def call(query: str) -> str:
    return (
        f"<tool_call>{json.dumps({'name': 'run_sql', 'arguments': {'query': query}})}</tool_call>"
    )


@pytest.fixture
def env():
    e = SQLEnv(time_limit_s=0.3)
    yield e
    e.close()


# --------------------------------------------------------------- database
def test_database_is_deterministic_and_consistent():
    a = list(build_database(np.random.default_rng(3)).iterdump())
    b = list(build_database(np.random.default_rng(3)).iterdump())
    c = list(build_database(np.random.default_rng(4)).iterdump())
    assert a == b and a != c
    conn = build_database(np.random.default_rng(3))
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    counts = {
        t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("customers", "employees", "products", "orders", "order_items")
    }
    assert counts["customers"] >= 20 and counts["orders"] >= 40
    assert counts["order_items"] >= counts["orders"]
    prices = [r[0] for r in conn.execute("SELECT price FROM products")]
    assert len(set(prices)) == len(prices)  # unique prices: "top n" has one answer


def test_read_only_db_blocks_writes_and_tracks_tables():
    conn = build_database(np.random.default_rng(0))
    db = ReadOnlyDB(conn, time_limit_s=0.3)
    before = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
    for sql in (
        "DELETE FROM orders",
        "UPDATE products SET price = 0",
        "INSERT INTO customers VALUES (999, 'x', 'y', 'z', '2020-01-01', 'gold')",
        "DROP TABLE orders",
        "CREATE TABLE t (x)",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA query_only = OFF",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="not authorized|read-only"):
            db.query(sql, 10)
    assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == before
    res = db.query(
        "SELECT COUNT(*) FROM orders WHERE customer_id IN (SELECT customer_id FROM customers)", 10
    )
    assert res.tables == {"orders", "customers"} and res.columns == ("COUNT(*)",)
    res = db.query("SELECT name FROM products", 3)
    assert len(res.rows) == 3 and res.more and res.tables == {"products"}
    with pytest.raises(sqlite3.OperationalError, match="ran longer than 0.3 s"):
        db.query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT COUNT(*) FROM c",
            10,
        )
    with pytest.raises(sqlite3.ProgrammingError):
        db.query("SELECT 1; SELECT 2", 10)


WRITES = (
    "DELETE FROM orders",
    "UPDATE products SET price = 0",
    "INSERT INTO customers (customer_id, name, city, country, signup_date, tier) "
    "VALUES (999, 'x', 'y', 'z', '2020-01-01', 'gold')",
    "REPLACE INTO products SELECT * FROM products",
    "WITH x AS (SELECT 1) DELETE FROM orders",
    "DROP TABLE orders",
    "CREATE TABLE t (x)",
    "CREATE TEMP TABLE t (x)",
    "CREATE VIEW v AS SELECT 1",
    "CREATE TEMP TRIGGER tr AFTER INSERT ON orders BEGIN SELECT 1; END",
    "ALTER TABLE orders ADD COLUMN x",
    "ATTACH DATABASE '{tmp}/attached.db' AS other",
    "DETACH DATABASE main",
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "BEGIN",
    "SAVEPOINT s",
    "VACUUM",
    "VACUUM INTO '{tmp}/copy.db'",
    "REINDEX",
    "ANALYZE",
    "SELECT load_extension('{tmp}/ext.so')",
    "SELECT 1; DELETE FROM orders",
)


def _state(conn: sqlite3.Connection) -> tuple:
    """Everything a write could change: rows, schema, temp objects, attached databases."""
    return (
        list(conn.iterdump()),
        conn.execute("SELECT * FROM temp.sqlite_master").fetchall(),
        conn.execute("PRAGMA query_only").fetchall(),
        [d[1] for d in conn.execute("PRAGMA database_list")],
    )


def test_agent_writes_never_reach_the_verdict(env, tmp_path):
    """SQL runs read-only: no write the agent sends (tool call or answer) changes anything."""
    env.reset(seed=0, options={"task": 2})
    conn, gold_sql = env.db.conn, env.question.gold_sql
    before = _state(conn)
    gold_rows = conn.execute(gold_sql).fetchall()
    for sql in WRITES:
        sql = sql.format(tmp=tmp_path)
        obs, r, term, _, info = env.step(call(sql))
        assert not term and info["reward_components"]["tool_error"] == pytest.approx(-0.05), sql
        assert obs[0]["content"].startswith("Error: "), (sql, obs)
    assert _state(conn) == before  # no row, table, view, trigger or setting changed
    assert list(tmp_path.iterdir()) == []  # no file attached, copied or loaded
    # the gold result is what it was, and the verdict still tells right from wrong
    assert conn.execute(gold_sql).fetchall() == gold_rows == env._gold.rows
    _, r, term, _, info = env.step(f"<answer>{gold_sql}</answer>")
    assert term and info["success"] and info["reward_components"]["outcome"] == 1.0
    for sql in WRITES[:8]:  # a write as the final answer: a failed query, outcome 0
        env.reset(seed=0, options={"task": 2})
        _, r, term, _, info = env.step(f"<answer>{sql.format(tmp=tmp_path)}</answer>")
        assert term and r == 0.0 and info["outcome"] == 0.0 and not info["success"], sql
        assert _state(env.db.conn) == before


def test_results_match_rules():
    assert results_match([(1,), (2,)], [(2,), (1,)], ordered=False)
    assert not results_match([(1,), (2,)], [(2,), (1,)], ordered=True)
    assert not results_match([(1,), (1,)], [(1,)], ordered=False)  # multiset, not set
    assert results_match([(2,)], [(2.0,)], ordered=False)
    assert results_match([(0.1 + 0.2,)], [(0.3,)], ordered=False)
    assert not results_match([(0.31,)], [(0.3,)], ordered=False)
    assert results_match([(3, "Books")], [("Books", 3)], ordered=False)  # column order
    assert not results_match([("Books",)], [("Books", 3)], ordered=False)
    assert not results_match([(None,)], [(0,)], ordered=False)


# ---------------------------------------------------------- scripted agent
def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def solve(question: str) -> str:
    """Independent reference queries (other shapes than the gold ones)."""
    status = re.search(r"status '(\w+)'", question)
    rules = [
        (r"live in (.+)\.$", lambda m: f"SELECT c.name FROM customers c WHERE c.city = {q(m[1])}"),
        (r"cost more than ([\d.]+)\?",
         lambda m: f"SELECT name FROM products WHERE price > {m[1]} ORDER BY name"),
        (r"^How many orders have the status",
         lambda m: f"SELECT COUNT(order_id) FROM orders WHERE status = {q(status[1])}"),
        (r"^List the distinct names of the customers",
         lambda m: "SELECT name FROM customers WHERE customer_id IN (SELECT customer_id FROM "
         f"orders WHERE status = {q(status[1])})"),
        (r"customers from (\w+)\?",
         lambda m: "SELECT SUM(quantity * unit_price) FROM order_items WHERE order_id IN "
         "(SELECT order_id FROM orders WHERE customer_id IN (SELECT customer_id FROM customers "
         f"WHERE country = {q(m[1])}))"),
        (r"^For each product category",
         lambda m: "SELECT COUNT(*) AS n, category FROM products GROUP BY category ORDER BY n"),
        (r"the (\d+) most expensive",
         lambda m: f"SELECT name FROM products ORDER BY -price LIMIT {m[1]}"),
        (r"more than (\d+) employees",
         lambda m: "SELECT department FROM (SELECT department, COUNT(*) AS c FROM employees "
         f"GROUP BY department) WHERE c > {m[1]}"),
        (r"average salary of the employees in the (\w+) department",
         lambda m: "SELECT SUM(salary) * 1.0 / COUNT(*) FROM employees "
         f"WHERE department = {q(m[1])}"),
        (r"whose manager is (.+)\.$",
         lambda m: "SELECT name FROM employees WHERE manager_id = "
         f"(SELECT employee_id FROM employees WHERE name = {q(m[1])})"),
        (r"spent the most",
         lambda m: "SELECT name, total FROM (SELECT o.customer_id AS cid, "
         "SUM(i.quantity * i.unit_price) AS total FROM orders o JOIN order_items i "
         "USING (order_id) WHERE o.status = 'delivered' GROUP BY cid) "
         "JOIN customers ON customer_id = cid ORDER BY total DESC LIMIT 1"),
        (r"signed up in (\d{4})",
         lambda m: f"SELECT COUNT(*) FROM customers WHERE signup_date LIKE '{m[1]}-%'"),
        (r"never been ordered",
         lambda m: "SELECT p.name FROM products p LEFT JOIN order_items oi "
         "ON oi.product_id = p.product_id WHERE oi.order_id IS NULL"),
        (r"^For each employee",
         lambda m: "SELECT (SELECT name FROM employees e WHERE e.employee_id = o.employee_id), "
         "COUNT(*) FROM orders o GROUP BY o.employee_id"),
    ]  # fmt: skip
    for pattern, make in rules:
        m = re.search(pattern, question)
        if m:
            return make(m)
    raise AssertionError(question)


def test_scripted_agent_solves_every_template():
    env = SQLEnv()
    seen = set()
    for template in range(len(TEMPLATES)):
        for seed in range(3):
            obs, _ = env.reset(seed=seed, options={"task": template})
            question = obs[1]["content"].split("Question: ")[1]
            seen.add(env.question.template)
            sql = solve(question)
            out, r, term, _, info = env.step(call(sql))
            assert info["reward_components"]["tool_ok"] == pytest.approx(0.05), out
            assert info["reward_components"]["valid_sql"] == pytest.approx(0.02)
            assert r == 0.0  # process rewards wait for success
            _, r, term, _, info = env.step(f"<answer>\n{sql};\n</answer>")
            assert term and info["success"] is True, (question, sql)
            # the query turn's well_formed, tool_ok, valid_sql and right_tables, paid now
            assert r == pytest.approx(1.0 + 0.02 + 0.05 + 0.02 + 0.1)
    assert len(seen) == len(TEMPLATES)
    env.close()


def test_wrong_answers_score_zero(env):
    env.reset(seed=0, options={"task": 6})  # ordered: top n by price
    n = re.search(r"the (\d+) most", env.question.text)[1]
    _, r, term, _, info = env.step(
        f"<answer>SELECT name FROM products ORDER BY price LIMIT {n}</answer>"
    )
    assert term and r == 0.0 and not info["success"]
    env.reset(seed=0, options={"task": 2})
    bad = env.question.gold_sql.replace("COUNT(*)", "COUNT(*) + 1")
    _, r, _, _, info = env.step(f"<answer>{bad}</answer>")
    assert info["outcome"] == 0.0
    env.reset(seed=0, options={"task": 2})
    obs, r, term, _, info = env.step("<answer>SELECT nope FROM orders</answer>")
    assert term and r == 0.0 and obs[0]["content"].startswith("Your query failed:")
    env.reset(seed=0, options={"task": 2})
    obs, *_ = env.step("<answer>DELETE FROM orders</answer>")
    assert "read-only" in obs[0]["content"]


# -------------------------------------------------------------------- env
def test_registered_and_check_env():
    env = agentgym.make("agentgym/SQL-v0")
    assert env.spec.max_episode_steps == 8
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_reset_deterministic_and_options(env):
    a, info = env.reset(seed=9)
    assert env.reset(seed=9)[0] == a
    assert "CREATE TABLE order_items" in a[1]["content"] and "Question: " in a[1]["content"]
    assert [s["function"]["name"] for s in info["tool_schemas"]] == ["run_sql"]
    assert len({env.reset(seed=s)[0][1]["content"] for s in range(10)}) >= 8
    obs, _ = env.reset(
        seed=1,
        options={
            "task": {"question": "How many products?", "gold_sql": "SELECT COUNT(*) FROM products"}
        },
    )
    assert obs[1]["content"].endswith("Question: How many products?")
    assert env.step("<answer>SELECT COUNT(product_id) FROM products</answer>")[4]["success"]
    for bad in (99, "x", {"question": "q"}):
        with pytest.raises(ConfigError):
            env.reset(seed=1, options={"task": bad})


def test_turn_rewards_valid_sql_runs_right_tables(env):
    env.reset(seed=2, options={"task": 4})  # revenue: order_items, orders, customers
    parts = env.step(call("SELEC name FROM customers"))[4]["reward_components"]
    assert parts["valid_sql"] == 0.0 and parts["tool_error"] == pytest.approx(-0.05)
    assert "syntax error" in env.step(call("SELEC 1"))[0][0]["content"]
    parts = env.step(call("SELECT nope FROM customers"))[4]["reward_components"]
    assert parts["valid_sql"] == pytest.approx(0.02) and parts["tool_ok"] == 0.0
    parts = env.step(call("SELECT * FROM customers LIMIT 2"))[4]["reward_components"]
    assert parts == pytest.approx(
        {"format": 0.0, "well_formed": 0.02, "tool_ok": 0.05, "tool_error": 0.0,
         "outcome": 0.0, "valid_sql": 0.02, "right_tables": 0.0}
    )  # fmt: skip
    join = (
        "SELECT COUNT(*) FROM order_items oi JOIN orders o ON o.order_id = oi.order_id "
        "JOIN customers c ON c.customer_id = o.customer_id"
    )
    parts = env.step(call(join) + call(join))[4]["reward_components"]
    assert parts["right_tables"] == pytest.approx(0.1)  # once, though two calls matched
    assert parts["valid_sql"] == pytest.approx(0.02)  # once per turn
    assert env.step(call(join))[4]["reward_components"]["right_tables"] == 0.0


def test_row_limit_and_output_format(env):
    env.reset(seed=0)
    obs, *_ = env.step(call("SELECT customer_id, name FROM customers ORDER BY customer_id"))
    lines = obs[0]["content"].splitlines()
    assert lines[0] == "customer_id | name"
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "(first 20 rows; more not shown)"
    obs, *_ = env.step(call("SELECT NULL AS x"))
    assert obs[0]["content"] == "x\nNULL\n(1 row)"


def test_malformed_calls_and_fuzz(env):
    env.reset(seed=0)
    obs, *_ = env.step(
        '<tool_call>{"name": "run_sql", "arguments": {"query": "SELECT 1}}</tool_call>'
    )
    assert obs[0]["role"] == "user" and "bad JSON in tool call #1" in obs[0]["content"]
    obs, *_ = env.step(call("SELECT 1").replace("run_sql", "sql"))
    assert obs[0]["content"] == "Error: unknown tool 'sql' (valid: run_sql)"
    rng = np.random.default_rng(2)
    alphabet = list("SELCT *FROMW;'\"{}<>/") + [
        "<tool_call>",
        "</tool_call>",
        "<answer>",
        "</answer>",
    ]
    for episode in range(10):
        env.reset(seed=episode)
        for _ in range(8):
            action = "".join(rng.choice(alphabet, size=int(rng.integers(0, 30))))
            _, r, term, _, info = env.step(action)
            assert set(info["reward_components"]) == set(SQLEnv.reward_spec.components)
            if term:
                break
