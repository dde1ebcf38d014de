"""Terminal output for the command line and recipes (library code never prints)."""

from __future__ import annotations

import sys

__all__ = ["echo"]


def echo(text: str = "", *, err: bool = False) -> None:
    """Write one line to stdout (or stderr) and flush, so progress shows at once."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()
