"""Expert (optimal, scripted) policies for built-in envs: demonstrations for SFT.

An expert reads the conversation the policy is shown (``Request.messages``) and
returns the action text; :func:`expert_policy` wraps it in a
:class:`~agentgym.policies.scripted.ScriptedPolicy`, so its turns land in token
ledgers exactly like sampled ones and the trainer can fine-tune on them.

Example:
    >>> from agentgym.policies.tinymodels import build_tiny_tokenizer
    >>> from agentgym.rollout import collect
    >>> expert = expert_policy("agentgym/FrozenLake-v0", build_tiny_tokenizer())
    >>> trajs = collect(expert, "agentgym/FrozenLake-v0", range(3), progress=False)
    >>> [t.success for t in trajs]
    [True, True, True]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from agentgym.catalog import Registry

__all__ = ["EXPERTS", "expert_policy", "frozenlake_expert", "lookup_expert"]

Expert = Callable[[list[dict[str, Any]]], str]

#: Expert functions by env id: ``fn(messages) -> action text``.
EXPERTS: Registry[Expert] = Registry("expert policy")

_MOVES = {"left": (0, -1), "down": (1, 0), "right": (0, 1), "up": (-1, 0)}


def _last_content(messages: list[dict[str, Any]], roles: tuple[str, ...]) -> str:
    for m in reversed(messages):
        if m.get("role") in roles:
            return str(m.get("content") or "")
    return ""


@EXPERTS.register("agentgym/Lookup-v0")
def lookup_expert(messages: list[dict[str, Any]]) -> str:
    """Look the asked item up, then answer with the code the tool returned."""
    from agentgym.envs.lookup import Lookup

    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        code = str(last.get("content", "")).rpartition(":")[2].strip()
        return Lookup.answer(code)
    asked = re.search(r"code of item (\w+)", _last_content(messages, ("user",)))
    return Lookup.call(asked.group(1) if asked else "")


@EXPERTS.register("agentgym/FrozenLake-v0")
def frozenlake_expert(messages: list[dict[str, Any]]) -> str:
    """A shortest safe path from P to G on the board of the latest observation."""
    text = _last_content(messages, ("user",))
    rows = [line.split() for line in text.splitlines()]
    board = [r for r in rows if r and all(len(c) == 1 and c in "PSFHG" for c in r)]
    start = next(((i, j) for i, r in enumerate(board) for j, c in enumerate(r) if c == "P"), None)
    if start is None:
        return "down"
    # Breadth-first search from P; the first move of a shortest path to G.
    first: dict[tuple[int, int], str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for r, c in frontier:
            if board[r][c] == "G":
                return first[(r, c)] or "down"
            for word, (dr, dc) in _MOVES.items():
                cell = (r + dr, c + dc)
                inside = 0 <= cell[0] < len(board) and 0 <= cell[1] < len(board[0])
                if inside and cell not in first and board[cell[0]][cell[1]] != "H":
                    first[cell] = first[(r, c)] or word
                    nxt.append(cell)
        frontier = nxt
    return "down"


def expert_policy(env_id: str, tokenizer: Any) -> Any:
    """A :class:`~agentgym.policies.scripted.ScriptedPolicy` running the expert of ``env_id``.

    Raises:
        ConfigError: no expert is registered for ``env_id`` (the message lists those that are).
    """
    from agentgym.policies.scripted import ScriptedPolicy

    return ScriptedPolicy(EXPERTS.get(env_id), tokenizer)
