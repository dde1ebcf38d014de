from __future__ import annotations

import json
from typing import Any, Literal, Optional

import pytest

from agentgym.envs.tool_env import TOOL_REWARDS, Score, ToolEnv
from agentgym.errors import ConfigError, InfraError, ToolError
from agentgym.rewards import RewardSpec
from agentgym.tools import (
    ParseError,
    Tool,
    Toolbox,
    ToolCall,
    parse_answer,
    parse_hermes,
    parse_json_calls,
    parse_openai,
    parse_tool_calls,
    tool,
    truncate,
    validate_arguments,
)


@tool
def search(
    query: str,
    k: int = 5,
    mode: Literal["bm25", "exact"] = "bm25",
    tags: Optional[list[str]] = None,  # noqa: UP045 (testing the Optional spelling)
    weight: float | None = None,
    extra: dict[str, int] | None = None,
    anything: Any = None,
) -> str:
    """Search the corpus.

    Returns the best matches first.

    Args:
        query: words to look for.
        k (int): how many results to
            return at most.
        mode: ranking method.
        tags: only documents with these tags.
        weight: score multiplier.
        extra: extra counters.
        anything: free-form value.

    Returns:
        The matches, one per line.
    """
    return f"{query}|{k}|{mode}"


def params() -> dict[str, Any]:
    return search.schema["function"]["parameters"]


# ------------------------------------------------------------------ schemas
def test_schema_shape_matches_openai_and_hf_tools():
    s = search.schema
    assert s["type"] == "function"
    assert set(s["function"]) == {"name", "description", "parameters"}
    assert s["function"]["name"] == "search"
    assert s["function"]["description"] == "Search the corpus.\n\nReturns the best matches first."
    assert json.loads(json.dumps(s)) == s  # JSON-serialisable


def test_schema_types_from_hints():
    p = params()
    props = p["properties"]
    assert p["type"] == "object" and p["additionalProperties"] is False
    assert p["required"] == ["query"]
    assert props["query"] == {"type": "string", "description": "words to look for."}
    assert props["k"] == {
        "type": "integer",
        "description": "how many results to return at most.",
        "default": 5,
    }
    assert props["mode"]["enum"] == ["bm25", "exact"] and props["mode"]["type"] == "string"
    assert props["tags"]["type"] == ["array", "null"]
    assert props["tags"]["items"] == {"type": "string"}
    assert props["weight"]["type"] == ["number", "null"]
    assert props["extra"]["type"] == ["object", "null"]
    assert props["extra"]["additionalProperties"] == {"type": "integer"}
    assert "type" not in props["anything"]


def test_method_tool_binds_per_instance_and_skips_self():
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        @tool
        def bump(self, by: int) -> int:
            """Increase the counter.

            Args:
                by: amount.
            """
            self.n += by
            return self.n

    a, b = Counter(), Counter()
    assert list(Counter.bump.parameters["properties"]) == ["by"]
    Toolbox([a.bump]).call(ToolCall("bump", {"by": 3}))
    assert (a.n, b.n) == (3, 0)


def test_tool_decorator_options_and_union():
    @tool(name="lookup", description="Find a thing.")
    def f(x: int | str) -> str:
        """Ignored.

        Args:
            x: key.
        """
        return str(x)

    assert f.name == "lookup" and f.description == "Find a thing."
    assert f.parameters["properties"]["x"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert f.validate({"x": 1}) == [] and f.validate({"x": "a"}) == []
    assert f.validate({"x": 1.5}) == ["argument 'x' must be integer | string, got number 1.5"]


def test_bad_tool_definitions_raise():
    def no_doc(x: int) -> int:
        return x

    def undocumented(x: int, y: int) -> int:
        """Doc.

        Args:
            x: documented.
        """
        return x

    def unhinted(x) -> int:  # type: ignore[no-untyped-def]
        """Doc.

        Args:
            x: documented.
        """
        return x

    def varargs(*xs: int) -> int:
        """Doc.

        Args:
            xs: many.
        """
        return 0

    def weird(x: complex) -> int:
        """Doc.

        Args:
            x: documented.
        """
        return 0

    with pytest.raises(ConfigError, match="docstring"):
        tool(no_doc)
    with pytest.raises(ConfigError, match="'y' is not documented"):
        tool(undocumented)
    with pytest.raises(ConfigError, match="needs a type hint"):
        tool(unhinted)
    with pytest.raises(ConfigError, match=r"\*args"):
        tool(varargs)
    with pytest.raises(ConfigError, match="unsupported type hint"):
        tool(weird)


# --------------------------------------------------------------- validation
def test_validation_messages():
    probs = search.validate({"k": "3", "x": 1, "mode": "fuzzy", "tags": ["a", 1], "weight": True})
    assert probs == [
        "missing required argument 'query'",
        "argument 'k' must be integer, got string \"3\"",
        "unknown argument 'x' (valid arguments: query, k, mode, tags, weight, extra, anything)",
        'argument \'mode\' must be one of ["bm25", "exact"], got string "fuzzy"',
        "argument 'tags'[1] must be string, got integer 1",
        "argument 'weight' must be number or null, got boolean true",
    ]


def test_validation_accepts_valid_and_int_for_number():
    assert search.validate({"query": "a", "weight": 2, "tags": None, "extra": {"a": 1}}) == []
    assert search.validate({"query": "a", "anything": [1, {"x": None}]}) == []
    assert validate_arguments(params(), [1]) == ["arguments must be a JSON object, got array"]
    assert search.validate({"query": "a", "extra": {"a": "b"}}) == [
        "argument 'extra'['a'] must be integer, got string \"b\""
    ]


# ------------------------------------------------------------------ parsers
def test_hermes_several_calls_and_errors_in_order():
    text = (
        "I'll search twice.\n"
        '<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>\n'
        '<tool_call>\n{"name": "search", "arguments": {"query": "b", "k": 2}}\n</tool_call>'
        '<tool_call>{"name": "search", "arguments": {"query": "c",}}</tool_call>'
        '<tool_call>{"name": "open", "parameters": "{\\"doc\\": 1}"}</tool_call>'
        "<tool_call>[1, 2]</tool_call>"
        '<tool_call>{"name": "search"'
    )
    out = parse_hermes(text)
    assert out[0] == ToolCall("search", {"query": "a"})
    assert out[1] == ToolCall("search", {"query": "b", "k": 2})
    assert isinstance(out[2], ParseError)
    pos = '{"name": "search", "arguments": {"query": "c",}}'.index(",}") + 1
    assert out[2].message == (
        "bad JSON in tool call #3: Expecting property name enclosed in double quotes "
        f"at position {pos} (line 1, column {pos + 1})"
    )
    assert out[3] == ToolCall("open", {"doc": 1})
    assert isinstance(out[4], ParseError) and "must be a JSON object" in out[4].message
    assert isinstance(out[5], ParseError) and out[5].message.startswith("unclosed <tool_call>")
    assert len(out) == 6


def test_hermes_missing_name_and_bad_arguments():
    (a,) = parse_hermes('<tool_call>{"arguments": {}}</tool_call>')
    (b,) = parse_hermes('<tool_call>{"name": "f", "arguments": [1]}</tool_call>')
    (c,) = parse_hermes('<tool_call>{"name": "f", "arguments": "{oops"}</tool_call>')
    assert isinstance(a, ParseError) and 'no "name"' in a.message
    assert isinstance(b, ParseError) and '"arguments" must be a JSON object, got array' in b.message
    assert isinstance(c, ParseError) and "arguments of tool call #1" in c.message
    assert "position 1" in c.message


def test_bare_json_calls():
    assert parse_json_calls('  {"name": "f", "arguments": {"x": 1}} ') == [ToolCall("f", {"x": 1})]
    fenced = '```json\n[{"name": "f", "arguments": {}}, {"name": "g"}]\n```'
    assert parse_json_calls(fenced) == [ToolCall("f", {}), ToolCall("g", {})]
    assert parse_json_calls("just prose {not a call}") == []
    (err,) = parse_json_calls('{"name": "f", "arguments": {"x": }}')
    assert isinstance(err, ParseError)
    pos = '{"name": "f", "arguments": {"x": }}'.index("}")
    assert err.message.endswith(f"at position {pos} (line 1, column {pos + 1})")


def test_openai_tool_calls():
    msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{bad"}},
            {"id": "c3", "type": "function", "function": {"name": "h", "arguments": ""}},
        ],
    }
    out = parse_openai(msg)
    assert out[0] == ToolCall("f", {"x": 1}, "c1")
    assert isinstance(out[1], ParseError) and "arguments of tool call #2" in out[1].message
    assert out[2] == ToolCall("h", {}, "c3")
    assert parse_openai(msg["tool_calls"][:1]) == out[:1]
    assert parse_tool_calls(msg) == out
    assert parse_tool_calls(json.dumps({"tool_calls": msg["tool_calls"][:1]})) == out[:1]
    assert parse_openai({"tool_calls": "x"})[0].message == '"tool_calls" must be a list, got string'


def test_auto_dispatch_and_no_calls():
    assert parse_tool_calls("The answer is 4.") == []
    assert parse_tool_calls('<tool_call>{"name": "f"}</tool_call>', "auto") == [ToolCall("f", {})]
    assert parse_tool_calls('{"name": "f"}', "hermes") == []
    with pytest.raises(ConfigError, match="unknown tool-call format"):
        parse_tool_calls("x", "xml")  # type: ignore[arg-type]


def test_parse_answer_is_strict():
    assert parse_answer("so <answer> 42 </answer>") == "42"
    assert parse_answer("no tag") is None
    cases = {
        "<answer>1": "unclosed <answer>",
        "<answer>1</answer><answer>2</answer>": "found 2 <answer> blocks",
        "1</answer>": "without <answer>",
        "<answer>  </answer>": "empty answer",
    }
    for text, msg in cases.items():
        out = parse_answer(text)
        assert isinstance(out, ParseError) and msg in out.message, text
    assert parse_answer("<sql>x</sql>", tag="sql") == "x"


# ------------------------------------------------------------------ Toolbox
@tool
def explode(kind: str) -> str:
    """Fail on purpose.

    Args:
        kind: which failure.
    """
    if kind == "tool":
        raise ToolError("nothing found for 'zz'")
    if kind == "infra":
        raise InfraError("sandbox down")
    if kind == "big":
        return "x" * 500
    raise ZeroDivisionError("division by zero")


def test_toolbox_runs_validates_and_catches():
    box = Toolbox([search, explode], max_output_chars=100)
    ok = box.call(ToolCall("search", {"query": "q"}, "id1"))
    assert (ok.status, ok.content, ok.call_id, ok.ok) == ("ok", "q|5|bm25", "id1", True)
    unknown = box.call(ToolCall("serch", {}))
    assert unknown.status == "invalid"
    assert unknown.content == "Error: unknown tool 'serch' (valid: search, explode)"
    bad = box.call(ToolCall("search", {"k": 2}))
    assert bad.content.startswith("Error: invalid call to search: missing required argument")
    assert "Expected search(query: string, k?: integer" in bad.content
    err = box.call(ToolCall("explode", {"kind": "zero"}))
    assert (err.status, err.content) == ("error", "Error: ZeroDivisionError: division by zero")
    assert box.call(ToolCall("explode", {"kind": "tool"})).content == (
        "Error: nothing found for 'zz'"
    )
    with pytest.raises(InfraError):
        box.call(ToolCall("explode", {"kind": "infra"}))
    big = box.call(ToolCall("explode", {"kind": "big"}))
    assert big.content == "x" * 100 + "\n...[truncated 400 more characters]"
    assert [s["function"]["name"] for s in box.schemas] == ["search", "explode"]


def test_toolbox_rejects_duplicates_and_non_tools():
    with pytest.raises(ConfigError, match="unique"):
        Toolbox([search, search])
    with pytest.raises(ConfigError, match="@tool"):
        Toolbox([len])  # type: ignore[list-item]
    assert isinstance(search, Tool)


def test_truncate():
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 2) == "ab\n...[truncated 4 more characters]"


# ------------------------------------------------------------------ ToolEnv


class Echo(ToolEnv):
    max_calls_per_turn = 2

    def make_tools(self):
        return [self.echo]

    def new_task(self, options):
        self.word = ["red", "green", "blue"][int(self.np_random.integers(3))]
        return f"Echo the word {self.word!r} with the tool, then answer with it."

    def score_answer(self, answer):
        return Score.exact(answer == self.word)

    @tool
    def echo(self, text: str) -> str:
        """Return the text.

        Args:
            text: what to echo.
        """
        return text * 3


def echo_call(text: str) -> str:
    return f'<tool_call>{{"name": "echo", "arguments": {{"text": "{text}"}}}}</tool_call>'


def test_tool_env_prompt_and_call_limits():
    env = Echo(max_output_chars=5)
    obs, info = env.reset(seed=0)
    assert obs[0]["role"] == "system" and json.dumps(env.toolbox.schemas[0]) in obs[0]["content"]
    assert info["tool_schemas"] == env.toolbox.schemas
    out, r, _, _, step_info = env.step(echo_call("abc") * 3)
    assert out[0]["content"] == "abcab\n...[truncated 4 more characters]"
    assert out[2]["content"].startswith("Error: too many calls in one turn (at most 2)")
    assert step_info["reward_components"]["format"] == -0.1
    assert step_info["reward_components"]["tool_ok"] == pytest.approx(0.05 * 2 / 3)


def test_tool_env_answer_rules_and_episode_end():
    env = Echo()
    env.reset(seed=1)
    # an answer tag inside a tool call's arguments is not a final answer
    out, _, term, _, _ = env.step(echo_call("<answer>x</answer>"))
    assert not term and out[0]["role"] == "tool"
    out, r, term, _, info = env.step(12345)  # type: ignore[arg-type]
    assert out[0]["content"] == "The action must be text, got int." and r == -0.1 and not term
    _, r, term, _, info = env.step(f"<answer>{env.word}</answer>")
    # the success turn also pays the gated shaping of the earlier valid tool call (0.07)
    assert term and info["success"] and r == pytest.approx(1.07)
    out, r, term, _, info = env.step("<answer>again</answer>")
    assert term and r == 0.0 and "episode is over" in out[0]["content"]
    assert info["success"]  # the finished episode's outcome stands


def test_tool_env_needs_the_base_components():
    class Bad(Echo):
        reward_spec = RewardSpec({"outcome": "only this"})

    with pytest.raises(ConfigError, match="lacks the ToolEnv components"):
        Bad()
    assert set(Echo.reward_spec.components) == set(TOOL_REWARDS)
    weighted = Echo(reward_weights={"well_formed": 0.0}, shaping="dense")
    weighted.reset(seed=0)
    assert weighted.step(echo_call("a"))[1] == pytest.approx(0.05)
