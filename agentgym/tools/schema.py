"""``@tool``: JSON schemas from typed Python functions, and argument validation.

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
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from agentgym.errors import ConfigError

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
