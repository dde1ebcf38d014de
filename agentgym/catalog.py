"""One registry type for every named extension point.

Advantage estimators, policy losses, policy backends and sandbox backends are
each a :class:`Registry`: a name maps to an object (a function or a class),
registering a taken name raises unless the caller passes ``override=True``, an
unknown name gets a "did you mean", and :meth:`Registry.available` lists the
names. A registry may also read an entry-point group, so an installed package
adds names without being imported by hand (environments use Gymnasium's own
registry, see :mod:`agentgym.registry`).

Example:
    >>> from agentgym.catalog import Registry
    >>> colors = Registry("color")
    >>> @colors.register("red")
    ... def red():
    ...     return "#f00"
    >>> colors.get("red")()
    '#f00'
    >>> colors.available()
    ['red']
    >>> colors.get("rde")
    Traceback (most recent call last):
    ...
    agentgym.errors.ConfigError: unknown color 'rde'. Did you mean 'red'? Available: ['red']
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, overload

from agentgym.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names mapped to objects of one kind.

    Args:
        kind: what the names name, for error messages (e.g. ``"advantage estimator"``).
        entry_point_group: an ``importlib.metadata`` entry-point group whose entries
            are loaded (once, on the first lookup) and registered under their names.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._plugins_loaded = entry_point_group is None
        self._lock = threading.Lock()
        self.plugin_errors: dict[str, str] = {}
        """Entry points that failed to load: name -> error text."""

    @overload
    def register(
        self, name: str, obj: None = None, *, override: bool = False
    ) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, override: bool = False) -> T: ...

    def register(self, name: str, obj: Any = None, *, override: bool = False) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        Raises:
            ConfigError: ``name`` is taken by another object and ``override`` is False.
        """

        def add(item: T) -> T:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}")
            current = self._items.get(name)
            if current is not None and current is not item and not override:
                raise ConfigError(
                    f"a {self.kind} named {name!r} is already registered ({current!r}); "
                    "pick another name or pass override=True to replace it"
                )
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The object registered as ``name``.

        Raises:
            ConfigError: unknown name; the message suggests close names and lists all.
        """
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}.{hint} Available: {self.available()}"
            ) from None

    def available(self) -> list[str]:
        """The registered names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())

    def __len__(self) -> int:
        return len(self.available())

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            for ep in entry_points(group=str(self.entry_point_group)):
                try:
                    self.register(ep.name, ep.load())
                except Exception as e:  # a broken plugin must not break the others
                    self.plugin_errors[ep.name] = f"{type(e).__name__}: {e}"

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={sorted(self._items)})"
