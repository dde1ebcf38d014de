"""The :class:`Toolbox`: schemas for the prompt, validated and safe execution."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from agentgym.errors import ConfigError, InfraError, ToolError
from agentgym.tools.parsers import ToolCall, truncate
from agentgym.tools.schema import Tool


# ------------------------------------------------------------------ Toolbox
@dataclass(frozen=True)
class ToolResult:
    """What a call produced.

    ``status`` is ``"ok"`` (the tool ran), ``"invalid"`` (not run: unknown tool
    or bad arguments) or ``"error"`` (the tool raised or reported an error).
    """

    name: str
    """The called tool's name (as the model wrote it)."""
    content: str
    """Text for the ``tool`` message (truncated; errors start with ``Error:``)."""
    status: Literal["ok", "invalid", "error"]
    """Outcome of the call."""
    call_id: str | None = None
    """The call's id, if it had one."""
    value: Any = field(default=None, repr=False, compare=False)
    """The tool's raw return value (``None`` unless ``status == "ok"``)."""

    @property
    def ok(self) -> bool:
        """The tool ran without error."""
        return self.status == "ok"


class Toolbox:
    """A set of tools: schemas for the prompt, validation and safe execution.

    Args:
        tools: the tools (names must be unique).
        max_output_chars: tool output beyond this is cut with a marker.

    Example:
        >>> from agentgym.tools import tool
        >>> @tool
        ... def add(a: int, b: int = 0) -> int:
        ...     '''Add two integers.
        ...
        ...     Args:
        ...         a: the first.
        ...         b: the second.
        ...     '''
        ...     return a + b
        >>> box = Toolbox([add])
        >>> box.call(ToolCall("add", {"a": 1, "b": 2})).content
        '3'
    """

    def __init__(self, tools: Iterable[Tool], max_output_chars: int = 4000) -> None:
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if not isinstance(t, Tool):
                raise ConfigError(f"expected a Tool (decorate the function with @tool), got {t!r}")
            if t.name in self.tools:
                raise ConfigError(f"two tools are named {t.name!r}; tool names must be unique")
            self.tools[t.name] = t
        if max_output_chars < 1:
            raise ConfigError(f"max_output_chars must be >= 1, got {max_output_chars}")
        self.max_output_chars = max_output_chars

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """The tools' schemas, for ``apply_chat_template(tools=...)`` or the OpenAI API."""
        return [t.schema for t in self.tools.values()]

    def check(self, call: ToolCall) -> str | None:
        """Why ``call`` cannot run (unknown tool, bad arguments), or ``None``."""
        t = self.tools.get(call.name)
        if t is None:
            return f"unknown tool {call.name!r} (valid: {', '.join(self.tools) or 'none'})"
        problems = t.validate(call.arguments)
        if problems:
            return f"invalid call to {call.name}: {'; '.join(problems)}. Expected {t.signature}"
        return None

    def call(self, call: ToolCall) -> ToolResult:
        """Validate and run ``call``; any exception becomes an error result.

        :class:`~agentgym.errors.InfraError` (e.g. the sandbox is down) is not
        the agent's fault and propagates.
        """
        problem = self.check(call)
        if problem is not None:
            return ToolResult(call.name, f"Error: {problem}", "invalid", call.id)
        try:
            value = self.tools[call.name].fn(**call.arguments)
        except InfraError:
            raise
        except ToolError as e:
            return ToolResult(
                call.name, truncate(f"Error: {e}", self.max_output_chars), "error", call.id
            )
        except Exception as e:  # the tool's own failure is an observation, not a crash
            text = f"Error: {type(e).__name__}: {e}"
            return ToolResult(call.name, truncate(text, self.max_output_chars), "error", call.id)
        return ToolResult(
            call.name, truncate(_to_text(value), self.max_output_chars), "ok", call.id, value
        )


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
