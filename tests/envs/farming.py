"""Scripted farming policies for every registered env, and the prompt failure to compare with.

A *farming* policy tries to collect reward without solving the task: it repeats
one valid action, repeats one valid tool call, loops without ending, stalls until
the turn limit, or does most of the task and then stops. Each is a scripted
sequence of actions driven through ``env.reset``/``env.step`` (no model).

The *prompt-failure return* of an env is what an honest, quick failure earns:

- SearchQA, MathTools, SQL: a wrong ``<answer>`` on the first turn: 0.
- Countdown: a wrong expression on the first turn (the first number alone): 0
  (with the default ``partial_credit=0``).
- FrozenLake: walking straight into the nearest hole: 0.
- Blackjack: sticking at once and not winning: 0 for a draw, -1 for a loss;
  the bound is the draw's 0.
- Taxi, CliffWalking, Wordle, TextWorld, Code: no failure ends these episodes
  early (only delivery, the goal, the word, a won game, all tests passing, or
  the turn limit do; a lost TextWorld game also ends it), so the prompt failure
  is the failed episode that earns nothing: its outcome, 0.

So every built-in env's prompt-failure return is 0, and the rule checked by
``test_farming.py`` is: a farming episode that does not succeed earns at most 0.

Not every kind of farming applies everywhere: only the tool envs have tool
calls; in Blackjack and Countdown no valid action leaves the episode running
forever (every hit draws a card, the first valid expression is the answer),
so there is no loop; their ``stall`` (text with no action) still runs to the
turn limit.

Run ``python -m tests.envs.farming`` to print the mean return of every farming
policy over seeds 0-4 for every registered env (made with its defaults).
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import agentgym

__all__ = ["BOOK", "PROMPT_FAILURE", "Ctx", "Policy", "run_episode", "episodes", "mean_return"]


@dataclass
class Ctx:
    """What a scripted policy sees: the env (unwrapped), reset info, latest messages, turn."""

    env: Any
    info: dict[str, Any]
    obs: list[dict[str, Any]]
    turn: int
    memo: dict[str, Any] = field(default_factory=dict)


Policy = Callable[[Ctx], str]

STALL = "Let me think about this step by step before I act."


def cycle(*actions: str) -> Policy:
    """Play ``actions`` in turn, over and over."""
    return lambda c: actions[c.turn % len(actions)]


def then(first: Callable[[Ctx], Sequence[str]], rest: Policy) -> Policy:
    """Play the actions ``first`` computes at reset, then follow ``rest``."""

    def policy(c: Ctx) -> str:
        if "plan" not in c.memo:
            c.memo["plan"] = list(first(c))
            c.memo["start"] = len(c.memo["plan"])
        if c.turn < c.memo["start"]:
            return c.memo["plan"][c.turn]
        return rest(Ctx(c.env, c.info, c.obs, c.turn - c.memo["start"], c.memo))

    return policy


def call(name: str, **arguments: Any) -> str:
    """One tool call in the ToolEnv format."""
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def answer(text: str) -> Policy:
    """Answer ``text`` at once (ToolEnv / Countdown answer tag)."""
    return lambda c: f"<answer>{text}</answer>"


# ------------------------------------------------------------------ grid helpers
_GRID = {"left": (0, -1), "down": (1, 0), "right": (0, 1), "up": (-1, 0)}
_BACK = {"left": "right", "right": "left", "up": "down", "down": "up"}


def _lake_path(env: Any, target: str) -> list[str]:
    """Shortest move list from the agent's cell to the nearest ``target`` tile (FrozenLake)."""
    board = env.board
    start = divmod(int(env._state), len(board[0]))
    seen, todo = {start: []}, deque([start])
    while todo:
        r, c = todo.popleft()
        if board[r][c] == target:
            return seen[(r, c)]
        if board[r][c] in "HG" and (r, c) != start:
            continue
        for word, (dr, dc) in _GRID.items():
            n = (r + dr, c + dc)
            if 0 <= n[0] < len(board) and 0 <= n[1] < len(board[0]) and n not in seen:
                seen[n] = seen[(r, c)] + [word]
                todo.append(n)
    return []


def _near_goal_then_loop(c: Ctx) -> str:
    """Walk to the cell next to the goal, then step back and forth there forever."""
    if "path" not in c.memo:
        c.memo["path"] = _lake_path(c.env, "G")[:-1]
    path = c.memo["path"]
    if c.turn < len(path):
        return path[c.turn]
    if not path:
        return "left"
    k = c.turn - len(path)
    return _BACK[path[-1]] if k % 2 == 0 else path[-1]


# --------------------------------------------------------------- other helpers
def _first_number(c: Ctx) -> str:
    return f"<answer>{c.info['numbers'][0]}</answer>"


def _near_miss(c: Ctx) -> str:
    """Countdown: the given number closest to the target (a cheap non-solution)."""
    target = c.info["target"]
    best = min(c.info["numbers"], key=lambda n: abs(n - target))
    return f"<answer>{best}</answer>"


def _search_question(c: Ctx) -> str:
    """SearchQA: search the question's own words (finds gold documents)."""
    question = c.obs[-1]["content"] if c.turn == 0 else c.memo["question"]
    c.memo.setdefault("question", question)
    return call("search", query=question)


def _question_then_wrong(c: Ctx) -> str:
    if c.turn < 3:
        return _search_question(c) if c.turn != 1 else call("open", doc_id="d000")
    return "<answer>nobody</answer>"


def _code_stub(value: str) -> Policy:
    def policy(c: Ctx) -> str:
        return f"```python\ndef {c.info['entry_point']}(*args, **kwargs):\n    return {value}\n```"

    return policy


def _walkthrough_but_last(c: Ctx) -> str:
    """TextWorld: play the walkthrough except its last command, then look forever."""
    walk = c.info.get("walkthrough") or []
    if c.turn < len(walk) - 1:
        return f"<command>{walk[c.turn]}</command>"
    return "<command>look</command>"


_WORDLE_SPREAD = ("crane", "pilot", "dusky", "fjord", "light", "crane")
_SQL_TABLES = (
    "SELECT * FROM customers",
    "SELECT * FROM orders",
    "SELECT * FROM products",
    "SELECT * FROM employees",
    "SELECT * FROM order_items",
    "SELECT * FROM orders JOIN customers USING (customer_id)",
    "SELECT * FROM order_items JOIN products USING (product_id)",
    "SELECT * FROM orders JOIN order_items USING (order_id)",
)

#: env id -> farming policy name -> policy.
BOOK: dict[str, dict[str, Policy]] = {
    "agentgym/FrozenLake-v0": {
        "repeat_action": cycle("left"),
        "loop": cycle("right", "left"),
        "stall": cycle(STALL),
        "near_goal_loop": _near_goal_then_loop,
    },
    "agentgym/Taxi-v0": {
        "repeat_action": cycle("north"),
        "repeat_pickup": cycle("pickup"),
        "loop": cycle("north", "south"),
        "stall": cycle(STALL),
    },
    "agentgym/CliffWalking-v0": {
        "repeat_action": cycle("up"),
        "loop": cycle("up", "down"),
        "stall": cycle(STALL),
    },
    "agentgym/Blackjack-v0": {
        "repeat_action": cycle("hit"),
        "stall": cycle(STALL),
    },
    "agentgym/Wordle-v0": {
        "repeat_action": cycle("<guess>crane</guess>"),
        "loop": cycle("<guess>crane</guess>", "<guess>slate</guess>"),
        "explore": cycle(*(f"<guess>{w}</guess>" for w in _WORDLE_SPREAD)),
        "stall": cycle(STALL),
    },
    "agentgym/Countdown-v0": {
        "repeat_action": _first_number,
        "near_miss": _near_miss,
        "stall": cycle(STALL),
    },
    "agentgym/SearchQA-v0": {
        "repeat_tool_call": cycle(call("search", query="city")),
        "repeat_gold_search": _search_question,
        "loop": cycle(call("search", query="company founder"), call("open", doc_id="d000")),
        "tools_then_wrong": _question_then_wrong,
        "stall": cycle(STALL),
    },
    "agentgym/MathTools-v0": {
        "repeat_tool_call": cycle(call("calculator", expression="1 + 1")),
        "loop": cycle(call("calculator", expression="2 * 3"), call("calculator", expression="7")),
        "tools_then_wrong": then(
            lambda c: [call("calculator", expression="1 + 1")] * 3, answer("-987654.25")
        ),
        "stall": cycle(STALL),
    },
    "agentgym/SQL-v0": {
        "repeat_tool_call": cycle(call("run_sql", query="SELECT COUNT(*) FROM customers")),
        "loop": cycle(*(call("run_sql", query=q) for q in _SQL_TABLES)),
        "tools_then_wrong": then(
            lambda c: [call("run_sql", query=q) for q in _SQL_TABLES[:5]],
            answer("SELECT 1 WHERE 0"),
        ),
        "stall": cycle(STALL),
    },
    "agentgym/Lookup-v0": {
        "repeat_tool_call": cycle(call("lookup", item="alpha")),
        "loop": cycle(call("lookup", item="alpha"), call("lookup", item="beta")),
        "tools_then_wrong": then(
            lambda c: [call("lookup", item="alpha")] * 3, answer("NOT-A-CODE")
        ),
        "stall": cycle(STALL),
    },
    "agentgym/TextWorld-v0": {
        "repeat_action": cycle("<command>look</command>"),
        "loop": cycle("<command>go north</command>", "<command>go south</command>"),
        "stall": cycle("<command>quit</command>", STALL),
        "almost_won": _walkthrough_but_last,
    },
    "agentgym/Code-v0": {
        "repeat_action": _code_stub("None"),
        "loop": cycle(
            "```python\nraise SystemExit(0)\n```", "```python\nimport os\nos._exit(0)\n```"
        ),
        "stall": cycle(STALL),
    },
}

#: env id -> the env's quickest honest failure (see the module docstring).
PROMPT_FAILURE: dict[str, Policy] = {
    "agentgym/FrozenLake-v0": lambda c: _lake_path(c.env, "H")[0],
    "agentgym/Countdown-v0": _first_number,
    "agentgym/SearchQA-v0": answer("nobody"),
    "agentgym/MathTools-v0": answer("-987654.25"),
    "agentgym/SQL-v0": answer("SELECT 1 WHERE 0"),
    "agentgym/Lookup-v0": answer("NOT-A-CODE"),
}

#: Every built-in env's prompt-failure return (module docstring).
PROMPT_FAILURE_RETURN = 0.0


@dataclass(frozen=True)
class Episode:
    """What one scripted episode earned."""

    total: float
    success: bool
    turns: int
    outcome: float


def run_episode(env: Any, policy: Policy, seed: int, options: dict | None = None) -> Episode:
    """Play ``policy`` on a made env (with its turn limit) until the episode ends."""
    obs, info = env.reset(seed=seed, options=options)
    ctx = Ctx(env.unwrapped, info, obs, 0)
    total, success, outcome = 0.0, False, 0.0
    for turn in range(10_000):
        ctx.turn, ctx.obs = turn, obs
        obs, reward, terminated, truncated, step_info = env.step(policy(ctx))
        total += float(reward)
        success, outcome = bool(step_info["success"]), float(step_info["outcome"])
        if terminated or truncated:
            return Episode(total, success, turn + 1, outcome)
    raise RuntimeError("episode never ended: the env has no turn limit")


def episodes(
    env_id: str, policy: Policy, seeds: Sequence[int] = range(5), **make_kwargs: Any
) -> list[Episode]:
    """Play ``policy`` once per seed on a fresh ``agentgym.make(env_id, **make_kwargs)``."""
    env = agentgym.make(env_id, **make_kwargs)
    try:
        return [run_episode(env, policy, s) for s in seeds]
    finally:
        env.close()


def mean_return(
    env_id: str, policy: Policy, seeds: Sequence[int] = range(5), **make_kwargs: Any
) -> tuple[float, int]:
    """Mean return over ``seeds`` and how many of those episodes succeeded."""
    eps = episodes(env_id, policy, seeds, **make_kwargs)
    return sum(e.total for e in eps) / len(eps), sum(e.success for e in eps)


def main(argv: Sequence[str] = ()) -> None:
    """Print the mean return of every farming policy (seeds 0-4) per env."""
    ids = list(argv) or [i for i in agentgym.list_envs() if i in BOOK]
    print(f"{'env':26} {'policy':20} {'mean return':>11} {'successes':>9} {'max failed':>10}")
    for env_id in ids:
        rows = dict(BOOK[env_id])
        if env_id in PROMPT_FAILURE:
            rows = {"(prompt failure)": PROMPT_FAILURE[env_id], **rows}
        for name, policy in rows.items():
            try:
                eps = episodes(env_id, policy)
            except Exception as e:  # an optional extra is missing: say so, go on
                print(f"{env_id:26} {name:20} {'skipped':>11} ({type(e).__name__}: {e})")
                continue
            mean = sum(e.total for e in eps) / len(eps)
            failed = [e.total for e in eps if not e.success]
            worst = f"{max(failed):10.3f}" if failed else f"{'-':>10}"
            print(f"{env_id:26} {name:20} {mean:11.3f} {sum(e.success for e in eps):9d} {worst}")


if __name__ == "__main__":
    main(sys.argv[1:])
