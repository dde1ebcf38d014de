"""Gymnasium spaces for chat observations and free-text actions."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from gymnasium import spaces

__all__ = ["ROLES", "Chat", "Utterance"]

#: Roles a message may carry, in the OpenAI / Hugging Face chat shape.
ROLES = ("system", "user", "assistant", "tool")

_SAMPLE_CHARS = string.ascii_letters + string.digits + ' .,<>/{}":_-\n'


class Utterance(spaces.Space[str]):
    """A free-text action: any string up to ``max_length`` characters.

    ``sample()`` draws random printable text, which every env must survive
    (it becomes a format-penalty observation, never an exception).

    Example:
        >>> Utterance(max_length=10).contains("go north")
        True
    """

    def __init__(self, max_length: int = 100_000, seed: int | None = None) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """Free text has no fixed-size vector form."""
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """Return random text of 0..min(64, max_length) characters."""
        length = int(self.np_random.integers(0, min(64, self.max_length) + 1))
        idx = self.np_random.integers(0, len(_SAMPLE_CHARS), size=length)
        return "".join(_SAMPLE_CHARS[i] for i in idx)

    def contains(self, x: Any) -> bool:
        """A string no longer than ``max_length``."""
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"Utterance(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Utterance) and other.max_length == self.max_length


class Chat(spaces.Space[list]):
    """A list of chat messages: ``[{"role": ..., "content": str, ...}, ...]``.

    Messages are plain dicts so they go straight into a tokenizer's
    ``apply_chat_template`` or an OpenAI-compatible request. Extra keys
    (``name``, ``tool_call_id``, ``tool_calls``) are allowed.
    """

    def __init__(
        self, roles: Sequence[str] = ROLES, max_messages: int = 64, seed: int | None = None
    ) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; valid roles are {ROLES}")
        self.roles = tuple(roles)
        self.max_messages = max_messages
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """Messages have no fixed-size vector form."""
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, Any]]:
        """Return one or two random user/tool messages (for tests of wrappers)."""
        n = int(self.np_random.integers(1, 3))
        text = Utterance(64, seed=int(self.np_random.integers(2**31)))
        choices = [r for r in self.roles if r in ("user", "tool")] or list(self.roles)
        return [
            {"role": choices[int(self.np_random.integers(len(choices)))], "content": text.sample()}
            for _ in range(n)
        ]

    def contains(self, x: Any) -> bool:
        """A list of dicts, each with a known role and string content."""
        if not isinstance(x, list) or len(x) > self.max_messages:
            return False
        for m in x:
            if not isinstance(m, dict) or m.get("role") not in self.roles:
                return False
            if not isinstance(m.get("content"), str):
                return False
        return True

    def __repr__(self) -> str:
        return f"Chat(roles={self.roles})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Chat) and other.roles == self.roles
