"""Action parsing shared by the built-in text games (internal).

Every parser here runs in time linear in the length of the text (actions may
be 100,000 characters of noise) and reports a malformed action by raising
:class:`~agentgym.errors.ActionParseError` with a message meant for the agent;
envs catch it and turn it into a user message plus a ``format`` penalty.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from agentgym.errors import ActionParseError

__all__ = ["extract_tag", "preview", "strip_wrapping", "parse_word", "join_words"]

#: Characters tolerated around a bare word: whitespace, ASCII punctuation, typographic quotes.
WRAPPING = string.whitespace + string.punctuation + "“”‘’«»…·"


def extract_tag(text: str, tag: str) -> str | None:
    """The content of the last ``<tag>...</tag>`` block (case-insensitive), or None.

    Runs in linear time (no backtracking regex), so huge inputs stay cheap.

    Example:
        >>> extract_tag("I think <action>left</action>", "action")
        'left'
    """
    low = text.lower()
    close = f"</{tag.lower()}>"
    opening = f"<{tag.lower()}>"
    end = low.rfind(close)
    if end < 0:
        return None
    start = low.rfind(opening, 0, end)
    if start < 0:
        return None
    return text[start + len(opening) : end]


def has_open_tag(text: str, tag: str) -> bool:
    """Whether ``<tag>`` occurs in the text (used to report an unclosed tag)."""
    return f"<{tag.lower()}>" in text.lower()


def preview(text: str, limit: int = 40) -> str:
    r"""A short, single-line, quoted rendering of ``text`` for error messages.

    Example:
        >>> preview("go\nleft")
        '"go left"'
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return f'"{flat}"'
    return f'"{flat[:limit]}..." ({len(text)} characters)'


def strip_wrapping(text: str) -> str:
    """``text`` without surrounding whitespace, punctuation and quotes."""
    return text.strip(WRAPPING)


def join_words(words: Sequence[str]) -> str:
    """``"a, b or c"`` (used in prompts and error messages)."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def parse_word(text: str, tag: str, noun: str = "action") -> str:
    """Extract one lowercase word from ``<tag>word</tag>`` or a bare word.

    A ``<tag>`` block anywhere in the text wins (the last one if several);
    otherwise the whole text, stripped of surrounding whitespace and
    punctuation, must be a single word. The word is lowercased; callers check
    it against their vocabulary.

    Raises:
        ActionParseError: empty text, an unclosed tag, or more than one word.
    """
    inner = extract_tag(text, tag)
    where = f" in <{tag}>" if inner is not None else ""
    if inner is None:
        if has_open_tag(text, tag):
            raise ActionParseError(f"The <{tag}> tag is not closed; write <{tag}>...</{tag}>.")
        inner = text
    word = strip_wrapping(inner)
    if not word:
        raise ActionParseError(f"Empty {noun}{where}.")
    if len(word.split()) > 1:
        raise ActionParseError(f"Expected one word{where}, got {preview(word)}.")
    return word.lower()
