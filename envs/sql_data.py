"""Data for the SQL env: a generated shop database and question templates.

:func:`build_database` fills an in-memory SQLite database from a numpy
Generator: ``customers``, ``employees`` (with ``manager_id``), ``products``
(unique prices; a few never ordered), ``orders`` and ``order_items``, joined
by foreign keys. :func:`draw_question` picks a template, fills its parameters
from the data and keeps only questions whose gold query has a non-empty,
unambiguous result.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentgym.errors import ConfigError

__all__ = ["Question", "TEMPLATES", "build_database", "draw_question"]

FIRST = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Mateo", "Sofia", "Ethan",
    "Chloe", "Hugo", "Lea", "Omar", "Yuki", "Priya", "Arjun", "Fatima", "Jonas", "Elena",
    "Marco", "Ingrid", "Kofi", "Amara", "Diego", "Hannah", "Samuel", "Nora", "Tariq", "Zoe",
)  # fmt: skip
LAST = (
    "Smith", "Garcia", "Müller", "Rossi", "Dubois", "Silva", "Kowalski", "Nakamura", "Patel",
    "Okafor", "Jensen", "Novak", "Haddad", "Kim", "Costa", "Fischer", "Moreau", "Lopez",
    "Ivanova", "Berg",
)  # fmt: skip
CITIES = (
    ("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Madrid", "Spain"), ("Valencia", "Spain"),
    ("Lyon", "France"), ("Paris", "France"), ("Berlin", "Germany"), ("Munich", "Germany"),
    ("Milan", "Italy"), ("Rome", "Italy"), ("Toronto", "Canada"), ("Vancouver", "Canada"),
)  # fmt: skip
PRODUCTS = {
    "Electronics": ("Wireless Mouse", "USB-C Hub", "Bluetooth Speaker", "Webcam",
                    "Mechanical Keyboard", "Portable SSD", "Noise-Cancelling Headphones"),
    "Home": ("Ceramic Mug", "Desk Lamp", "Throw Blanket", "Cutting Board", "French Press",
             "Wall Clock"),
    "Outdoors": ("Camping Tent", "Hiking Backpack", "Water Bottle", "Trekking Poles",
                 "Sleeping Bag"),
    "Books": ("SQL Cookbook", "Data Science Handbook", "Travel Guide Japan", "Mystery Novel",
              "Cooking for Two"),
    "Toys": ("Jigsaw Puzzle", "Building Blocks", "Board Game", "Plush Bear", "Kite"),
}  # fmt: skip
DEPARTMENTS = ("Sales", "Support", "Logistics", "Marketing", "Finance")
STATUSES = ("pending", "shipped", "delivered", "cancelled")

SCHEMA = """
CREATE TABLE customers (
  customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL,
  country TEXT NOT NULL, signup_date TEXT NOT NULL, tier TEXT NOT NULL);
CREATE TABLE employees (
  employee_id INTEGER PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT NULL,
  hire_date TEXT NOT NULL, salary INTEGER NOT NULL,
  manager_id INTEGER REFERENCES employees(employee_id));
CREATE TABLE products (
  product_id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
  price REAL NOT NULL, stock INTEGER NOT NULL);
CREATE TABLE orders (
  order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
  employee_id INTEGER NOT NULL REFERENCES employees(employee_id), order_date TEXT NOT NULL,
  status TEXT NOT NULL);
CREATE TABLE order_items (
  order_id INTEGER NOT NULL REFERENCES orders(order_id),
  product_id INTEGER NOT NULL REFERENCES products(product_id),
  quantity INTEGER NOT NULL, unit_price REAL NOT NULL, PRIMARY KEY (order_id, product_id));
"""


def _date(rng: np.random.Generator, first_year: int, last_year: int) -> str:
    day = np.datetime64(f"{first_year}-01-01") + int(
        rng.integers(0, 365 * (last_year - first_year + 1))
    )
    return str(day)


def _names(rng: np.random.Generator, n: int) -> list[str]:
    pairs = [f"{f} {s}" for f in FIRST for s in LAST]
    idx = rng.choice(len(pairs), size=n, replace=False)
    return [pairs[int(i)] for i in idx]


def build_database(rng: np.random.Generator) -> sqlite3.Connection:
    """A new in-memory shop database drawn from ``rng`` (foreign keys enforced)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(SCHEMA)
    n_cust, n_emp = int(rng.integers(20, 36)), int(rng.integers(10, 15))
    names = _names(rng, n_cust + n_emp)
    tiers = ("bronze", "silver", "gold")
    customers = []
    for i in range(n_cust):
        city, country = CITIES[int(rng.integers(len(CITIES)))]
        tier = tiers[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        customers.append((i + 1, names[i], city, country, _date(rng, 2019, 2023), tier))
    employees: list[tuple[int, str, str, str, int, int | None]] = [
        (1, names[n_cust], "Management", _date(rng, 2010, 2012), 150_000, None)
    ]
    heads: dict[str, int] = {}
    for j in range(1, n_emp):
        dept = DEPARTMENTS[(j - 1) % len(DEPARTMENTS)]
        is_head = dept not in heads
        heads.setdefault(dept, j + 1)
        salary = int(rng.integers(38, 95)) * 1000 + (20_000 if is_head else 0)
        boss = 1 if is_head else heads[dept]
        employees.append((j + 1, names[n_cust + j], dept, _date(rng, 2012, 2023), salary, boss))
    products: list[list[Any]] = []
    for cat, items in PRODUCTS.items():
        for name in items:
            if rng.random() < 0.75:
                products.append([0, name, cat, 0.0, int(rng.integers(0, 200))])
    cents = rng.choice(np.arange(300, 40000), size=len(products), replace=False)
    for k, (p, c) in enumerate(zip(products, cents, strict=True)):
        p[0], p[3] = k + 1, round(int(c) / 100, 2)
    n_unsold = int(rng.integers(2, 4))
    unsold = {int(i) for i in rng.choice(len(products), size=n_unsold, replace=False)}
    orderable = [p for k, p in enumerate(products) if k not in unsold]
    sellers = [e[0] for e in employees if e[2] in ("Sales", "Support")]
    orders, items_rows = [], []
    for o in range(int(rng.integers(40, 81))):
        status = STATUSES[int(rng.choice(4, p=[0.15, 0.25, 0.5, 0.1]))]
        cust = int(rng.integers(1, n_cust + 1))
        seller = sellers[int(rng.integers(len(sellers)))]
        orders.append((o + 1, cust, seller, _date(rng, 2021, 2024), status))
        picks = rng.choice(len(orderable), size=int(rng.integers(1, 5)), replace=False)
        for pi in picks:
            p = orderable[int(pi)]
            price = float(p[3]) if rng.random() < 0.8 else round(float(p[3]) * 0.9, 2)
            items_rows.append((o + 1, p[0], int(rng.integers(1, 6)), price))
    conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", customers)
    conn.executemany("INSERT INTO employees VALUES (?,?,?,?,?,?)", employees)
    conn.executemany("INSERT INTO products VALUES (?,?,?,?,?)", [tuple(p) for p in products])
    conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?)", orders)
    conn.executemany("INSERT INTO order_items VALUES (?,?,?,?)", items_rows)
    conn.commit()
    return conn


@dataclass(frozen=True)
class Question:
    """A question and its gold query."""

    template: str
    text: str
    gold_sql: str
    ordered: bool = False
    """The result's row order matters (the gold query orders)."""


_Maker = Callable[[np.random.Generator, sqlite3.Connection], Question]


def _pick(rng: np.random.Generator, conn: sqlite3.Connection, sql: str) -> object:
    values = [r[0] for r in conn.execute(sql)]
    return values[int(rng.integers(len(values)))]


def _t_city(rng, conn):
    city = _pick(rng, conn, "SELECT DISTINCT city FROM customers ORDER BY city")
    return Question(
        "customers_in_city",
        f"List the names of the customers who live in {city}.",
        f"SELECT name FROM customers WHERE city = '{city}'",
    )


def _t_price(rng, conn):
    x = round(float(_pick(rng, conn, "SELECT price FROM products ORDER BY price")) - 0.01, 2)
    return Question(
        "products_over_price",
        f"Which products cost more than {x:.2f}? Give their names.",
        f"SELECT name FROM products WHERE price > {x}",
    )


def _t_count_status(rng, conn):
    s = STATUSES[int(rng.integers(4))]
    return Question(
        "count_status",
        f"How many orders have the status '{s}'?",
        f"SELECT COUNT(*) FROM orders WHERE status = '{s}'",
    )


def _t_cust_status(rng, conn):
    s = STATUSES[int(rng.integers(4))]
    return Question(
        "customers_with_status",
        "List the distinct names of the customers who have at least one order "
        f"with the status '{s}'.",
        "SELECT DISTINCT c.name FROM customers AS c JOIN orders AS o "
        f"ON o.customer_id = c.customer_id WHERE o.status = '{s}'",
    )


def _t_revenue(rng, conn):
    country = _pick(rng, conn, "SELECT DISTINCT country FROM customers ORDER BY country")
    return Question(
        "revenue_by_country",
        "What is the total revenue (the sum of quantity times unit price over order items) of "
        f"the orders placed by customers from {country}?",
        "SELECT SUM(oi.quantity * oi.unit_price) FROM order_items AS oi JOIN orders AS o "
        "ON o.order_id = oi.order_id JOIN customers AS c ON c.customer_id = o.customer_id "
        f"WHERE c.country = '{country}'",
    )


def _t_per_category(rng, conn):
    return Question(
        "products_per_category",
        "For each product category, give the category and the number of products in it.",
        "SELECT category, COUNT(*) FROM products GROUP BY category",
    )


def _t_top_n(rng, conn):
    n = int(rng.integers(2, 6))
    return Question(
        "most_expensive",
        f"What are the names of the {n} most expensive products, from the most expensive down?",
        f"SELECT name FROM products ORDER BY price DESC LIMIT {n}",
        ordered=True,
    )


def _t_big_departments(rng, conn):
    n = int(rng.integers(1, 3))
    return Question(
        "departments_over_n",
        f"Which departments have more than {n} employees? Give the department names.",
        f"SELECT department FROM employees GROUP BY department HAVING COUNT(*) > {n}",
    )


def _t_avg_salary(rng, conn):
    d = DEPARTMENTS[int(rng.integers(len(DEPARTMENTS)))]
    return Question(
        "avg_salary",
        f"What is the average salary of the employees in the {d} department?",
        f"SELECT AVG(salary) FROM employees WHERE department = '{d}'",
    )


def _t_reports(rng, conn):
    m = _pick(
        rng,
        conn,
        "SELECT DISTINCT m.name FROM employees AS e JOIN employees AS m "
        "ON e.manager_id = m.employee_id ORDER BY m.name",
    )
    return Question(
        "reports_to",
        f"List the names of the employees whose manager is {m}.",
        "SELECT e.name FROM employees AS e JOIN employees AS m "
        f"ON e.manager_id = m.employee_id WHERE m.name = '{m}'",
    )


def _t_top_customer(rng, conn):
    sql = (
        "SELECT c.name, SUM(oi.quantity * oi.unit_price) AS total FROM customers AS c "
        "JOIN orders AS o ON o.customer_id = c.customer_id JOIN order_items AS oi "
        "ON oi.order_id = o.order_id WHERE o.status = 'delivered' "
        "GROUP BY c.customer_id ORDER BY total DESC LIMIT 1"
    )
    return Question(
        "top_customer",
        "Which customer spent the most in total on delivered orders (the sum of "
        "quantity times unit price)? Give the name and the total.",
        sql,
        ordered=True,
    )


def _t_signups(rng, conn):
    year = int(rng.integers(2019, 2024))
    return Question(
        "signups_in_year",
        f"How many customers signed up in {year}?",
        f"SELECT COUNT(*) FROM customers WHERE strftime('%Y', signup_date) = '{year}'",
    )


def _t_never_ordered(rng, conn):
    return Question(
        "never_ordered",
        "Which products have never been ordered? Give their names.",
        "SELECT name FROM products WHERE product_id NOT IN (SELECT product_id FROM order_items)",
    )


def _t_orders_per_employee(rng, conn):
    return Question(
        "orders_per_employee",
        "For each employee who handled at least one order, give the employee's name and the "
        "number of orders they handled.",
        "SELECT e.name, COUNT(*) FROM employees AS e JOIN orders AS o "
        "ON o.employee_id = e.employee_id GROUP BY e.employee_id",
    )


TEMPLATES: tuple[_Maker, ...] = (
    _t_city, _t_price, _t_count_status, _t_cust_status, _t_revenue, _t_per_category, _t_top_n,
    _t_big_departments, _t_avg_salary, _t_reports, _t_top_customer, _t_signups,
    _t_never_ordered, _t_orders_per_employee,
)  # fmt: skip


def _usable(q: Question, conn: sqlite3.Connection) -> bool:
    rows = conn.execute(q.gold_sql).fetchall()
    if not rows or all(v is None or v == 0 for v in rows[0]):
        return False
    if q.template == "top_customer":  # a tie for first place would make two answers right
        totals = [
            r[0]
            for r in conn.execute(q.gold_sql.replace("LIMIT 1", "LIMIT 2").replace("c.name, ", ""))
        ]
        return len(totals) < 2 or round(totals[0], 6) != round(totals[1], 6)
    return True


def draw_question(
    rng: np.random.Generator, conn: sqlite3.Connection, template: int | None = None
) -> Question:
    """Draw a question with a non-empty gold result (template index or random)."""
    if template is not None and not 0 <= template < len(TEMPLATES):
        raise ConfigError(f"template index must be in 0..{len(TEMPLATES) - 1}, got {template}")
    order = [template] if template is not None else []
    order += [int(i) for i in rng.permutation(len(TEMPLATES))]
    for idx in order:
        for _ in range(10):
            q = TEMPLATES[idx](rng, conn)
            if _usable(q, conn):
                return q
        if template is not None:
            break
    raise ConfigError(f"could not draw a usable question for template {template}")
