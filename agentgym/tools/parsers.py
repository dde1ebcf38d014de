"""Tool-call parsers: an assistant message to typed calls and errors.

Parsers return a list of :class:`ToolCall` and :class:`ParseError` in message
order: :func:`parse_hermes` (``<tool_call>{"name": ..., "arguments": ...}</tool_call>``,
several per message), :func:`parse_json_calls` (the whole message is a JSON
object or list of them), :func:`parse_openai` (``tool_calls`` of an OpenAI
message) and :func:`parse_tool_calls` (picks one of these).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from agentgym.errors import ConfigError
from agentgym.tools.schema import _json_type


# ----------------------------------------------------------------- parsing
@dataclass(frozen=True)
class ToolCall:
    """One parsed tool call."""

    name: str
    """The tool's name as the model wrote it."""
    arguments: dict[str, Any]
    """Keyword arguments (a JSON object)."""
    id: str | None = None
    """The call id, when the format carries one (OpenAI ``tool_calls``)."""


@dataclass(frozen=True)
class ParseError:
    """A part of the message that could not be read as a tool call (or answer)."""

    message: str
    """What was wrong and how to fix it, e.g. ``bad JSON ... at position 12``."""
    raw: str = ""
    """The offending text (truncated), for logs."""


ParseResult = Union[ToolCall, ParseError]  # noqa: UP007 (runtime alias on 3.10)

_HERMES_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_FENCE_RE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def _json_error(what: str, e: json.JSONDecodeError) -> str:
    return f"bad JSON in {what}: {e.msg} at position {e.pos} (line {e.lineno}, column {e.colno})"


def _call_from_obj(obj: Any, label: str) -> ParseResult:
    raw = json.dumps(obj, default=str)[:200]
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
        obj = {**obj["function"], "id": obj.get("id")}
    if not isinstance(obj, dict):
        return ParseError(
            f"{label} must be a JSON object like "
            f'{{"name": "...", "arguments": {{...}}}}, got {_json_type(obj)}',
            raw,
        )
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return ParseError(f'{label} has no "name" (a non-empty string naming the tool)', raw)
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        if not args.strip():
            args = {}
        else:
            try:
                args = json.loads(args)
            except json.JSONDecodeError as e:
                return ParseError(_json_error(f"the arguments of {label}", e), raw)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return ParseError(
            f'{label}: "arguments" must be a JSON object, got {_json_type(args)}', raw
        )
    call_id = obj.get("id")
    return ToolCall(name.strip(), args, call_id if isinstance(call_id, str) else None)


def parse_hermes(text: str) -> list[ParseResult]:
    """Parse ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks.

    The Hermes / Qwen format; a message may hold several blocks. ``"parameters"``
    is accepted for ``"arguments"``, and arguments may be a JSON-encoded string.

    Example:
        >>> parse_hermes('<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>')
        [ToolCall(name='f', arguments={'x': 1}, id=None)]
    """
    out: list[ParseResult] = []
    end = 0
    for i, m in enumerate(_HERMES_RE.finditer(text), start=1):
        end = m.end()
        body = m.group(1).strip()
        label = f"tool call #{i}"
        fence = _FENCE_RE.match(body)
        if fence:
            body = fence.group(1).strip()
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as e:
            out.append(ParseError(_json_error(label, e), body[:200]))
            continue
        out.append(_call_from_obj(obj, label))
    rest = text[end:]
    if "<tool_call>" in rest:
        out.append(
            ParseError(
                "unclosed <tool_call> tag: write the JSON call and close it with </tool_call>",
                rest[:200],
            )
        )
    return out


def parse_json_calls(text: str) -> list[ParseResult]:
    """Parse a message that is (only) a JSON tool call, a list of them, or a message.

    Accepts ``{"name": ..., "arguments": ...}``, a list of such objects, and an
    OpenAI-style ``{"tool_calls": [...]}`` object; a surrounding code fence is
    ignored. Text that does not start with ``{`` or ``[`` gives ``[]``.
    """
    body = text.strip()
    fence = _FENCE_RE.match(body)
    if fence:
        body = fence.group(1).strip()
    if not body.startswith(("{", "[")):
        return []
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        return [ParseError(_json_error("the JSON tool call", e), body[:200])]
    if isinstance(obj, dict) and "tool_calls" in obj:
        return parse_openai(obj)
    if isinstance(obj, list):
        return [_call_from_obj(o, f"tool call #{i}") for i, o in enumerate(obj, start=1)]
    return [_call_from_obj(obj, "the tool call")]


def parse_openai(message: Mapping[str, Any] | Sequence[Any]) -> list[ParseResult]:
    r"""Parse OpenAI-style ``tool_calls`` (from a message dict or the list itself).

    Each entry looks like ``{"id": "call_1", "type": "function", "function":
    {"name": "f", "arguments": "{\\"x\\": 1}"}}``; arguments are a JSON string
    (a dict is accepted too).
    """
    calls = message.get("tool_calls") if isinstance(message, Mapping) else message
    if calls is None:
        return []
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        return [ParseError(f'"tool_calls" must be a list, got {_json_type(calls)}')]
    return [_call_from_obj(c, f"tool call #{i}") for i, c in enumerate(calls, start=1)]


def parse_tool_calls(
    action: str | Mapping[str, Any],
    fmt: Literal["auto", "hermes", "json", "openai"] = "auto",
) -> list[ParseResult]:
    """Parse the tool calls of an assistant action.

    Args:
        action: the assistant's text, or an OpenAI-style message dict.
        fmt: ``"auto"`` picks OpenAI for a dict, Hermes when the text holds
            ``<tool_call>``, else bare JSON when the text starts with ``{``/``[``
            (or a code fence); text without any of these has no calls.

    Returns:
        ToolCall and ParseError items in message order (empty: no calls).
    """
    if isinstance(action, Mapping):
        if fmt not in ("auto", "openai"):
            return [ParseError(f"a message dict needs fmt='openai', got fmt={fmt!r}")]
        out = parse_openai(action)
        content = action.get("content")
        if not out and isinstance(content, str):
            return parse_tool_calls(content, "auto")
        return out
    if fmt == "hermes":
        return parse_hermes(action)
    if fmt == "json":
        return parse_json_calls(action)
    if fmt == "openai":
        return parse_json_calls(action)
    if fmt != "auto":
        raise ConfigError(f"unknown tool-call format {fmt!r}; use auto, hermes, json or openai")
    if "<tool_call>" in action:
        return parse_hermes(action)
    return parse_json_calls(action)


def parse_answer(text: str, tag: str = "answer") -> str | ParseError | None:
    """Strictly parse one ``<tag>...</tag>`` final answer.

    Returns:
        The stripped answer text; ``None`` when the text has no such tag; a
        :class:`ParseError` when the tag is unclosed, repeated, nested or empty.
    """
    open_t, close_t = f"<{tag}>", f"</{tag}>"
    n_open, n_close = text.count(open_t), text.count(close_t)
    if n_open == 0 and n_close == 0:
        return None
    if n_open > 1 or n_close > 1:
        return ParseError(f"found {max(n_open, n_close)} {open_t} blocks; give exactly one")
    if n_open == 0:
        return ParseError(f"found {close_t} without {open_t}; write {open_t}...{close_t}")
    start = text.index(open_t) + len(open_t)
    end = text.find(close_t, start)
    if end < 0:
        return ParseError(f"unclosed {open_t} tag: close it with {close_t}")
    answer = text[start:end].strip()
    if not answer:
        return ParseError(f"empty answer: write it between {open_t} and {close_t}")
    return answer


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, ending with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n...[truncated {len(text) - limit} more characters]"
