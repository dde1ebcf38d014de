"""Tools for LLM agents: ``@tool``, JSON schemas from signatures, call parsers.

``@tool`` turns a typed Python function with a google-style docstring into a
:class:`Tool` whose :attr:`Tool.schema` is the shape that Hugging Face chat
templates take as ``tools=`` and the OpenAI API takes as ``tools``. For example, decorating
``def add(a: int, b: int = 0) -> int`` whose docstring has ``Args:`` lines for
``a`` and ``b`` gives a tool whose ``schema["function"]["parameters"]`` is an
object schema with ``a`` required and ``b`` optional (default 0).

Type hints map to JSON schema: ``str`` string, ``int`` integer, ``float``
number, ``bool`` boolean, ``list[X]`` array of X, ``dict[str, X]`` object,
``Literal[...]`` enum, ``X | None`` / ``Optional[X]`` nullable, ``Any`` anything.
A parameter with a default is optional. Decorating a method (first parameter
``self``) gives a per-instance tool when read through the instance, so tool
state lives on the object that owns it, never in a global.

Parsers turn an assistant message into typed results, a list of
:class:`ToolCall` and :class:`ParseError` in message order:
:func:`parse_hermes` (``<tool_call>{"name": ..., "arguments": ...}</tool_call>``,
several per message), :func:`parse_json_calls` (the whole message is a JSON
object or list of them), :func:`parse_openai` (``tool_calls`` of an OpenAI
message) and :func:`parse_tool_calls` (picks one of these).
:class:`Toolbox` validates and runs calls and returns :class:`ToolResult`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from agentgym.errors import ConfigError, InfraError, ToolError

__all__ = [
    "Tool",
    "tool",
    "ToolCall",
    "ParseError",
    "ToolResult",
    "Toolbox",
    "parse_tool_calls",
    "parse_hermes",
    "parse_json_calls",
    "parse_openai",
    "parse_answer",
    "validate_arguments",
    "truncate",
]

_JSON_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_SECTION_RE = re.compile(
    r"^(Args|Arguments|Parameters|Returns?|Raises|Yields?|Examples?|Notes?|Attributes)\s*:\s*$"
)
_ARG_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


# --------------------------------------------------------------------- Tool
@dataclass(frozen=True)
class Tool:
    """A callable tool with a JSON schema. Build it with :func:`tool`.

    Attributes are read-only; reading a method tool through an instance binds
    it to that instance (``obj.search`` is ``obj``'s own tool).
    """

    name: str
    """Name the model calls the tool by."""
    description: str
    """What the tool does (the docstring's text before its sections)."""
    parameters: dict[str, Any]
    """JSON schema (type ``object``) of the keyword arguments."""
    fn: Callable[..., Any] = field(repr=False, compare=False)
    """The Python function (bound when read through an instance)."""

    @property
    def schema(self) -> dict[str, Any]:
        """``{"type": "function", "function": {name, description, parameters}}``."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @property
    def signature(self) -> str:
        """A short human-readable signature, e.g. ``search(query: string, k?: integer)``."""
        props = self.parameters.get("properties", {})
        required = set(self.parameters.get("required", []))
        parts = []
        for pname, pschema in props.items():
            opt = "" if pname in required else "?"
            parts.append(f"{pname}{opt}: {_describe_schema(pschema)}")
        return f"{self.name}({', '.join(parts)})"

    def validate(self, arguments: Any) -> list[str]:
        """Problems with ``arguments`` against the schema (empty when valid)."""
        return validate_arguments(self.parameters, arguments)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation)."""
        return self.fn(*args, **kwargs)

    def __get__(self, obj: Any, objtype: type | None = None) -> Tool:
        if obj is None or not hasattr(self.fn, "__get__"):
            return self
        return dataclasses.replace(self, fn=self.fn.__get__(obj, objtype))


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Turn a typed, documented function (or method) into a :class:`Tool`.

    Use as ``@tool`` or ``@tool(name="...", description="...")``. Every
    parameter needs a type hint and a line in the docstring's ``Args:``
    section; ``*args``/``**kwargs`` are not allowed.

    Args:
        fn: the function to wrap.
        name: tool name (default: the function's name).
        description: tool description (default: the docstring summary).

    Raises:
        ConfigError: a hint is missing or unsupported, or an argument is
            undocumented.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        desc, params = schema_from_function(f)
        return Tool(name or f.__name__, description or desc, params, f)

    return wrap(fn) if fn is not None else wrap


def schema_from_function(fn: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """The description and parameters JSON schema of ``fn`` (``self`` skipped)."""
    where = getattr(fn, "__qualname__", repr(fn))
    doc = inspect.getdoc(fn)
    if not doc:
        raise ConfigError(f"tool {where} needs a docstring: a summary and an Args: section")
    summary, arg_docs = _parse_docstring(doc)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as e:  # a hint naming an undefined type
        raise ConfigError(f"cannot resolve the type hints of tool {where}: {e}") from e
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigError(f"tool {where}: *args/**kwargs cannot be described by a schema")
        if p.name not in hints:
            raise ConfigError(f"tool {where}: argument {p.name!r} needs a type hint")
        if p.name not in arg_docs:
            raise ConfigError(
                f"tool {where}: argument {p.name!r} is not documented; add "
                f"'{p.name}: <what it is>' under 'Args:' in the docstring"
            )
        prop = _type_schema(hints[p.name], f"{where}({p.name})")
        prop["description"] = arg_docs[p.name]
        if p.default is p.empty:
            required.append(p.name)
        elif isinstance(p.default, (str, int, float, bool, type(None))):
            prop["default"] = p.default
        properties[p.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return summary, schema


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Google docstring -> (summary text, {arg: description})."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    entry_indent: int | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        m = _SECTION_RE.match(line)
        if m:
            section, entry_indent, current = m.group(1), None, None
            continue
        if section is None:
            summary.append(stripped)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if entry_indent is None:
            entry_indent = indent
        am = _ARG_RE.match(stripped)
        if indent <= entry_indent and am:
            current = am.group(1)
            args[current] = am.group(2).strip()
        elif current is not None:
            args[current] = (args[current] + " " + stripped).strip()
    text = "\n".join(summary).strip()
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text), args


def _type_schema(hint: Any, where: str) -> dict[str, Any]:
    """JSON schema of one type hint; unsupported hints raise ConfigError."""
    if hint is Any:
        return {}
    if hint in _JSON_NAMES:
        return {"type": _JSON_NAMES[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        kinds = {_JSON_NAMES.get(type(a)) for a in args}
        if None in kinds:
            raise ConfigError(f"{where}: Literal values must be str/int/float/bool/None")
        out: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1:
            out["type"] = kinds.pop()
        return out
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        nullable = len(members) < len(args)
        if len(members) == 1:
            inner = _type_schema(members[0], where)
            return _nullable(inner) if nullable else inner
        out = {"anyOf": [_type_schema(a, where) for a in members]}
        if nullable:
            out["anyOf"].append({"type": "null"})
        return out
    if hint in (list, tuple, set, Sequence) or origin in (list, tuple, set, Sequence):
        out = {"type": "array"}
        item_args = [a for a in args if a is not Ellipsis]
        if len(set(item_args)) == 1:
            out["items"] = _type_schema(item_args[0], where)
        elif item_args:
            raise ConfigError(f"{where}: tuples must be homogeneous (tuple[int, ...])")
        return out
    if hint in (dict, Mapping) or origin in (dict, Mapping):
        out = {"type": "object"}
        if args:
            if args[0] is not str:
                raise ConfigError(f"{where}: object keys must be str, got {args[0]!r}")
            out["additionalProperties"] = _type_schema(args[1], where)
        return out
    raise ConfigError(
        f"{where}: unsupported type hint {hint!r}; use str, int, float, bool, "
        "list[X], dict[str, X], Literal[...], X | None or Any"
    )


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    t = out.get("type")
    if isinstance(t, str):
        out["type"] = [t, "null"]
        return out
    if "enum" in out:
        return out
    return {"anyOf": [schema, {"type": "null"}]}


def _describe_schema(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_describe_schema(s) for s in schema["anyOf"])
    t = schema.get("type", "any")
    if isinstance(t, list):
        return " | ".join(t)
    if t == "array" and "items" in schema:
        return f"array of {_describe_schema(schema['items'])}"
    return str(t)


# --------------------------------------------------------------- validation
def validate_arguments(schema: Mapping[str, Any], arguments: Any) -> list[str]:
    """Check call arguments against a parameters schema made by :func:`tool`.

    Checks the object shape, required and unknown arguments, types (``bool``
    is not an integer; an integer is a number), enums, array items and
    object values.

    Returns:
        One message per problem, e.g. ``"missing required argument 'query'"``;
        empty when the arguments are valid.
    """
    if not isinstance(arguments, Mapping):
        return [f"arguments must be a JSON object, got {_json_type(arguments)}"]
    props: Mapping[str, Any] = schema.get("properties", {})
    problems = [
        f"missing required argument {r!r}" for r in schema.get("required", []) if r not in arguments
    ]
    for key, value in arguments.items():
        if key not in props:
            if schema.get("additionalProperties", True) is False:
                valid = ", ".join(props) or "none"
                problems.append(f"unknown argument {key!r} (valid arguments: {valid})")
            continue
        msg = _check_value(value, props[key], f"argument {key!r}")
        if msg:
            problems.append(msg)
    return problems


def _check_value(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    if "anyOf" in schema:
        if any(_check_value(value, s, where) is None for s in schema["anyOf"]):
            return None
        return f"{where} must be {_describe_schema(schema)}, got {_show(value)}"
    t = schema.get("type")
    if t is not None:
        kinds = t if isinstance(t, list) else [t]
        if not any(_is_type(value, k) for k in kinds):
            return f"{where} must be {' or '.join(kinds)}, got {_show(value)}"
    if "enum" in schema and not any(
        value == e and type(value) is type(e) or (_is_num(value) and _is_num(e) and value == e)
        for e in schema["enum"]
    ):
        return f"{where} must be one of {json.dumps(schema['enum'])}, got {_show(value)}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            msg = _check_value(item, schema["items"], f"{where}[{i}]")
            if msg:
                return msg
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), Mapping):
        for k, v in value.items():
            msg = _check_value(v, schema["additionalProperties"], f"{where}[{k!r}]")
            if msg:
                return msg
    return None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_num(value)
    checks = {"string": str, "boolean": bool, "array": list, "object": dict}
    if kind == "null":
        return value is None
    return isinstance(value, checks.get(kind, object))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for py, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, py):
            return name
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "value"


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{_json_type(value)} {text}"


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
