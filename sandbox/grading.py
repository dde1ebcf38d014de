"""Host side of grading: what the tests need from the submission, and the tests frame.

The verdict of :meth:`~agentgym.sandbox.Sandbox.run_tests` is decided inside the
sandbox by a grader process that never runs submitted code (see
``sandbox/_agent.py``). The host's part is small: find, for every test snippet,
the names it takes from the submission (names the snippet uses but never
binds, other than builtins), and send the tests as a separate frame that the
agent forwards to the grader only after the submission's process was forked.
"""

from __future__ import annotations

import ast
import builtins
import json
import struct
from collections.abc import Mapping

__all__ = ["free_names", "tests_frame"]

_BUILTINS = frozenset(dir(builtins))


def free_names(src: str) -> list[str]:
    """Names ``src`` reads but never binds (and that are not builtins), sorted.

    These are looked up in the submission's globals when the test runs.

    Example:
        >>> free_names("import math; assert f(math.pi) == g; x = 1")
        ['f', 'g']
    """
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return []
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
    return sorted(loaded - bound - _BUILTINS)


def tests_frame(tests: Mapping[str, str]) -> bytes:
    """The tests as the agent's second frame: ``[[name, source, free names], ...]``."""
    items = [[str(k), str(v), free_names(str(v))] for k, v in tests.items()]
    body = json.dumps(items).encode("utf-8")
    return struct.pack(">I", len(body)) + body
