"""Config dataclasses from dicts and files (TOML, YAML, JSON), composed and checked.

Every config in agentgym is a dataclass; configs compose (the training config
holds a collection config, which holds the sampling parameters), so a file
mirrors that nesting::

    # train.toml
    env_id = "agentgym/FrozenLake-v0"
    steps = 20
    [collect]
    group_size = 8
    [collect.sampling]
    temperature = 0.7

Unknown keys fail loudly, with the valid ones listed. The command line builds the
same dataclasses (with tyro); ``--config FILE`` supplies the starting values.

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Inner:
    ...     x: int = 1
    >>> @dataclass
    ... class Outer:
    ...     name: str = "a"
    ...     inner: Inner = field(default_factory=Inner)
    >>> from_dict(Outer, {"inner": {"x": 5}})
    Outer(name='a', inner=Inner(x=5))
    >>> from_dict(Outer, {"nmae": "b"})
    Traceback (most recent call last):
    ...
    agentgym.errors.ConfigError: unknown Outer key(s) ['nmae'] (did you mean 'name'?); valid: ['inner', 'name']
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from agentgym.errors import ConfigError

__all__ = ["from_dict", "to_dict", "load_file", "load_config", "cli_registry"]

C = TypeVar("C")


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable forward refs: fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def from_dict(cls: type[C], data: dict[str, Any] | Any, *, where: str = "") -> C:
    """Build dataclass ``cls`` from a (nested) dict; nested dataclass fields recurse.

    Raises:
        ConfigError: a key is not a field of its dataclass, or a section is not a mapping.
    """
    if isinstance(data, cls):
        return data
    name = where or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{name} must be a mapping of its fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown {name} key(s) {unknown}{hint}; valid: {sorted(fields)}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        kind = hints.get(key)
        if not dataclasses.is_dataclass(kind):  # annotation unresolvable: use the default's type
            factory = fields[key].default_factory
            kind = factory if dataclasses.is_dataclass(factory) else type(fields[key].default)
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            values[key] = from_dict(kind, value, where=f"{name}.{key}")
        elif isinstance(value, list) and typing.get_origin(kind) is tuple:
            values[key] = tuple(value)
        else:
            values[key] = value
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a nested dict of plain values (JSON-writable)."""
    return dataclasses.asdict(config)


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a config file: ``.toml``, ``.yaml``/``.yml`` or ``.json``, by extension.

    Raises:
        ConfigError: the file is missing, unreadable, or not a mapping at the top.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            from agentgym.errors import require

            data = require("yaml", "cli", "YAML config files").safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(
                f"config file {str(p)!r}: unknown extension {suffix!r}; use .toml, .yaml, "
                ".yml or .json"
            )
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"config file {str(p)!r} could not be parsed: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top level")
    return data


def load_config(cls: type[C], path: str | Path) -> C:
    """``from_dict(cls, load_file(path))``."""
    return from_dict(cls, load_file(path), where=f"{cls.__name__} (from {path})")


def cli_registry() -> Any:
    """A tyro constructor registry for agentgym configs: ``dict[str, Any]`` takes JSON.

    Every command line of agentgym (the ``agentgym`` command, ``bench/*.py``) parses
    config dataclasses with ``tyro.cli(..., registry=cli_registry())``.
    """
    import tyro

    registry = tyro.constructors.ConstructorRegistry()

    @registry.primitive_rule
    def _json_object(info: Any) -> Any:
        if info.type != dict[str, Any]:
            return None

        def parse(args: list[str]) -> dict[str, Any]:
            try:
                value = json.loads(args[0])
            except json.JSONDecodeError as e:
                msg = f"not valid JSON ({e.msg} at position {e.pos}): {args[0]!r}"
                raise ValueError(msg) from e
            if not isinstance(value, dict):
                raise ValueError(f"expected a JSON object like '{{\"k\": 1}}', got {args[0]!r}")
            return value

        return tyro.constructors.PrimitiveConstructorSpec(
            nargs=1,
            metavar="JSON",
            instance_from_str=parse,
            is_instance=lambda x: isinstance(x, dict),
            str_from_instance=lambda x: [json.dumps(x)],
        )

    return registry
