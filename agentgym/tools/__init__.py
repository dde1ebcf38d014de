"""Tools for LLM agents: ``@tool`` schemas, tool-call parsers and the :class:`Toolbox`.

- :mod:`agentgym.tools.schema`: ``@tool``, JSON schemas from signatures, validation.
- :mod:`agentgym.tools.parsers`: assistant text to :class:`ToolCall` / :class:`ParseError`.
- :mod:`agentgym.tools.toolbox`: :class:`Toolbox` runs validated calls, returns :class:`ToolResult`.
"""

from agentgym.tools.parsers import (
    ParseError,
    ParseResult,
    ToolCall,
    parse_answer,
    parse_hermes,
    parse_json_calls,
    parse_openai,
    parse_tool_calls,
    truncate,
)
from agentgym.tools.schema import Tool, schema_from_function, tool, validate_arguments
from agentgym.tools.toolbox import Toolbox, ToolResult

__all__ = [
    # defining tools
    "Tool",
    "tool",
    "schema_from_function",
    "validate_arguments",
    # parsing calls
    "ToolCall",
    "ParseError",
    "ParseResult",
    "parse_tool_calls",
    "parse_hermes",
    "parse_json_calls",
    "parse_openai",
    "parse_answer",
    "truncate",
    # running calls
    "ToolResult",
    "Toolbox",
]
