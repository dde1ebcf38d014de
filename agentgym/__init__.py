"""agentgym: Gymnasium-style environments and RL training for multi-turn LLM agents."""

from agentgym.core import AgentEnv, Message, assistant, system, tool_message, user
from agentgym.errors import AgentGymError, EnvNotFound
from agentgym.registry import list_envs, load_plugins, make, register, spec
from agentgym.rewards import RewardSpec
from agentgym.spaces import Chat, Utterance
from agentgym.tools import ParseError, Tool, Toolbox, ToolCall, ToolResult, parse_tool_calls, tool
from agentgym.trajectory import TokenLedger, Trajectory, Turn, read_jsonl, write_jsonl

__version__ = "0.1.0"

__all__ = [
    # environments
    "AgentEnv",
    "Message",
    "RewardSpec",
    "Chat",
    "Utterance",
    "system",
    "user",
    "assistant",
    "tool_message",
    # registry
    "register",
    "make",
    "spec",
    "list_envs",
    "load_plugins",
    # tools
    "tool",
    "Tool",
    "Toolbox",
    "ToolCall",
    "ToolResult",
    "ParseError",
    "parse_tool_calls",
    # trajectories
    "Turn",
    "Trajectory",
    "TokenLedger",
    "read_jsonl",
    "write_jsonl",
    # errors
    "AgentGymError",
    "EnvNotFound",
]

load_plugins()
