from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.envs.search_qa import BM25, SearchQA, load_corpus, normalize_answer
from agentgym.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture
def env():
    e = SearchQA()
    yield e
    e.close()


# ------------------------------------------------------------------- BM25
def test_bm25_ranks_by_term_rarity_and_length():
    texts = [
        "the cat sat on the mat",
        "the dog chased the cat around the big garden all day long",
        "a dog",
        "zebra",
    ]
    bm = BM25(texts)
    assert [i for i, _ in bm.search("zebra", 4)] == [3]
    # "dog": the short document beats the long one (length normalisation)
    assert [i for i, _ in bm.search("dog", 4)] == [2, 1]
    # the rare term "mat" outweighs the common "the"
    assert bm.search("the mat", 1)[0][0] == 0
    assert bm.search("unknownword", 3) == []
    assert bm.search("", 3) == []
    scores = bm.scores("cat")
    assert scores[0] > scores[1] > 0 and scores[2] == scores[3] == 0


def test_normalize_answer():
    assert normalize_answer("  The University of Kleaprer. ") == "university of kleaprer"
    assert normalize_answer("an Apple, a PEAR!") == "apple pear"
    assert normalize_answer("1921") == "1921"


# ----------------------------------------------------------------- corpus
def test_corpus_file_is_what_the_script_generates():
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/make_search_corpus.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    shipped = json.loads((ROOT / "envs/data/search_corpus.json").read_text(encoding="utf-8"))
    assert gen.build() == shipped


def test_every_question_is_verifiable_from_its_gold_docs():
    c = load_corpus()
    assert 150 <= len(c.docs) <= 300 and len(c.questions) >= 200
    assert len({d["title"] for d in c.docs}) == len(c.docs)
    for q in c.questions:
        first, second = (c.doc(i) for i in q["gold_docs"])
        assert first["title"] in q["question"], q
        assert q["answer"] in second["text"] or q["answer"] == second["title"], q
        # the second document is reachable from the first (or names its entity)
        assert second["title"] in first["text"] or first["title"] in second["text"], q


# --------------------------------------------------------- scripted agent
def open_titled(env, title: str) -> str:
    obs = env.step(call("search", query=title, k=5))[0]
    for line in obs[0]["content"].splitlines():
        doc_id, doc_title, _ = line.split(" | ", 2)
        if doc_title == title:
            return env.step(call("open", doc_id=doc_id))[0][0]["content"]
    raise AssertionError(f"{title!r} not found by search")


def find(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return m.group(1)


def solve(env, question: str) -> str:
    """A scripted agent: two hops through search/open, reading facts from documents."""
    rules = [
        (r"In which city was the founder of (.+) born\?",
         [r"founded in \d+ by (.+?)\. ", r"was born in (\w+)"]),
        (r"In which country is the headquarters city of (.+)\?",
         [r"headquarters are in (\w+)", r"is a city in (\w+)"]),
        (r"Who founded the company that makes the (.+)\?", [r"made by (.+?)\. ", r"by (.+?)\. "]),
        (r"In which city is the maker of the (.+) headquartered\?",
         [r"made by (.+?)\. ", r"headquarters are in (\w+)"]),
        (r"Which university did the author of (.+) attend\?",
         [r"book by (.+?)\.$", r"studied at the (.+?)\."]),
        (r"In what year was the author of (.+) born\?", [r"book by (.+?)\.$", r"\(born (\d+)\)"]),
        (r"In which country was (.+) born\?", [r"was born in (\w+)", r"is a city in (\w+)"]),
    ]  # fmt: skip
    for q_re, hops in rules:
        m = re.fullmatch(q_re, question)
        if m:
            entity = m.group(1)
            for hop in hops:
                entity = find(hop, open_titled(env, entity))
            return entity
    person = find(r"company founded by (.+) established\?", question)
    obs = env.step(call("search", query=f"company founded by {person}", k=10))[0]
    for line in obs[0]["content"].splitlines():
        doc_id = line.split(" | ")[0]
        text = env.step(call("open", doc_id=doc_id))[0][0]["content"]
        m = re.search(rf"company founded in (\d+) by {re.escape(person)}\.", text)
        if m:
            return m.group(1)
    raise AssertionError(question)


def test_scripted_agent_answers_every_question():
    env = SearchQA()
    n = len(env.questions)
    for i in range(n):
        obs, _ = env.reset(options={"task": i})
        answer = solve(env, obs[1]["content"])
        _, r, term, trunc, info = env.step(f"The answer is <answer>{answer}</answer>.")
        assert term and not trunc and info["success"] is True and info["outcome"] == 1.0, i
        # its tool calls' process rewards (>= 0.2 with both gold docs), capped at 0.2
        assert r == pytest.approx(1.2) and info["shaping_paid"] == pytest.approx(0.2)
    env.close()


# -------------------------------------------------------------------- env
def test_registered_and_check_env():
    env = agentgym.make("agentgym/SearchQA-v0")
    assert env.spec.max_episode_steps == 10
    check_env(env.unwrapped, skip_render_check=True)


def test_reset_deterministic_and_task_options(env):
    a, info = env.reset(seed=11)
    assert env.reset(seed=11)[0] == a
    assert a[0]["role"] == "system" and "fictional" in a[0]["content"]
    assert [s["function"]["name"] for s in info["tool_schemas"]] == ["search", "open"]
    assert len({env.reset(seed=s)[0][1]["content"] for s in range(20)}) >= 15
    q = load_corpus().questions[17]
    assert env.reset(options={"task": q["id"]})[0][1]["content"] == q["question"]
    env.reset(options={"task": {"question": "Who?", "answer": "Nobody"}})
    assert env.step("<answer>nobody</answer>")[4]["success"]
    for bad in (10_000, "q999", {"question": "x"}, 1.5):
        with pytest.raises(ConfigError):
            env.reset(options={"task": bad})


def test_splits():
    train, test = SearchQA(split="train"), SearchQA(split="test")
    ids_train = {q["id"] for q in train.questions}
    ids_test = {q["id"] for q in test.questions}
    assert ids_train.isdisjoint(ids_test)
    assert len(ids_train) + len(ids_test) == len(load_corpus().questions)
    with pytest.raises(ConfigError, match="split must be one of"):
        SearchQA(split="dev")


def test_gold_doc_reward_first_time_only(env):
    env.reset(options={"task": 0})
    gold = env.task["gold_docs"]
    first_title = load_corpus().doc(gold[0])["title"]
    _, r, _, _, info = env.step(call("search", query=first_title, k=1))
    assert info["reward_components"]["gold_doc"] == pytest.approx(0.1)
    assert r == 0.0 and info["shaping_deferred"] == pytest.approx(0.1 + 0.02 + 0.05)
    _, _, _, _, info = env.step(call("open", doc_id=gold[0]))
    assert info["reward_components"]["gold_doc"] == 0.0  # already credited
    _, _, _, _, info = env.step(call("open", doc_id=gold[1]))
    assert info["reward_components"]["gold_doc"] == pytest.approx(0.1)
    env.reset(options={"task": 0})  # a new episode credits again
    _, _, _, _, info = env.step(call("open", doc_id=gold[1]))
    assert info["reward_components"]["gold_doc"] == pytest.approx(0.1)


def test_answer_normalisation_and_wrong_answer(env):
    env.reset(options={"task": 3})
    answer = env.task["answer"]
    _, _, term, _, info = env.step(f"<answer>the {answer.upper()}.</answer>")
    assert term and info["success"]
    env.reset(options={"task": 3})
    obs, r, term, _, info = env.step("<answer>Atlantis</answer>")
    assert term and r == 0.0 and info["outcome"] == 0.0 and not info["success"]
    assert obs[0]["content"] == f"Incorrect; the answer is {answer}."


def test_tool_errors_and_malformed_calls(env):
    env.reset(seed=0)
    obs, r, term, _, info = env.step(call("open", doc_id="d999"))
    assert obs[0]["content"].startswith("Error: no document 'd999'")
    assert info["reward_components"]["tool_error"] == pytest.approx(-0.05) and not term
    obs, *_ = env.step(call("search", query="x", k=50))
    assert obs[0]["content"] == "Error: k must be between 1 and 10, got 50"
    obs, *_ = env.step(call("search", query="qqqqzzzz"))
    assert obs[0]["content"] == "No documents match; try other keywords."
    obs, _, _, _, info = env.step(call("lookup", query="x"))
    assert obs[0]["content"] == "Error: unknown tool 'lookup' (valid: search, open)"
    assert info["reward_components"]["format"] == -0.1
    obs, *_ = env.step(call("search", query=["a"]))
    assert "argument 'query' must be string, got array" in obs[0]["content"]
    obs, *_ = env.step('<tool_call>{"name": "search", "arguments": {"query": "a"}</tool_call>')
    assert obs[0]["role"] == "user" and "bad JSON in tool call #1" in obs[0]["content"]


def test_fuzz_random_actions_never_raise(env):
    rng = np.random.default_rng(1)
    alphabet = list('ad0{}[]<>/":, qx\n') + ["<tool_call>", "</tool_call>", '"name"', "search"]
    for episode in range(15):
        env.reset(seed=episode)
        for _ in range(8):
            action = "".join(rng.choice(alphabet, size=int(rng.integers(0, 30))))
            _, r, term, _, info = env.step(action)
            assert isinstance(r, float)
            assert set(info["reward_components"]) == set(SearchQA.reward_spec.components)
            if term:
                break
