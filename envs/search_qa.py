"""SearchQA: two-hop questions over a small fictional corpus, with BM25 search.

``agentgym/SearchQA-v0`` asks a question whose answer needs two documents of
a shipped corpus (``envs/data/search_corpus.json``: 198 short documents about
invented countries, cities, universities, people, companies, products and
books, and 246 questions; regenerate with ``scripts/make_search_corpus.py``).
Example: "In which city was the founder of Meastund Systems born?" needs the
company's document (its founder) and the founder's (the birthplace).

The question is drawn from the seed; ``options={"task": i}`` picks question
``i`` of the split, ``options={"task": "q017"}`` a question by id, and
``options={"task": {"question", "answer", "gold_docs"}}`` poses your own.
Kwarg ``split``: ``"all"`` (default), ``"train"`` (80%) or ``"test"`` (20%).

Tools: ``search(query, k=5)`` ranks documents with BM25 (implemented here:
k1=1.2, b=0.75, lowercase word tokens over title + text) and returns
``id | title | snippet`` lines; ``open(doc_id)`` returns a whole document.

Answer: ``<answer>...</answer>``, scored by normalised exact match (lowercase,
punctuation and the articles a/an/the removed, whitespace collapsed).

Reward components: the :class:`~agentgym.envs.tool_env.ToolEnv` ones
and ``gold_doc``:

=============  ==========================================================  =========
component      value                                                       paid
=============  ==========================================================  =========
``format``     -0.1 for a malformed turn                                   each turn
``tool_error`` -0.05 x fraction of the turn's calls that failed            each turn
``well_formed`` +0.02 when every call of the turn is well formed           on success
``tool_ok``    +0.05 x fraction of the turn's calls that ran               on success
``gold_doc``   +0.1 the first time each gold document appears in search    on success
               results or is opened (at most +0.2 per episode)
``outcome``    1.0 for a correct answer                                    answer turn
=============  ==========================================================  =========

"On success": process rewards are reported each turn in
``info["reward_components"]`` but paid only on the turn of a correct answer,
at most ``shaping_cap`` (0.2) in all (:mod:`agentgym.envs.shaping`). So a
failed episode earns at most 0, what a wrong first answer earns.
``shaping="dense"`` pays them every turn instead, which is farmable: repeating
one valid search for the 10 turns and never answering then earns +0.70.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from agentgym.envs.tool_env import TOOL_REWARDS, Score, ToolEnv
from agentgym.errors import ConfigError, ToolError
from agentgym.registry import register
from agentgym.rewards import RewardSpec
from agentgym.tools import Tool, ToolCall, ToolResult, tool

__all__ = ["SearchQA", "BM25", "Corpus", "load_corpus", "normalize_answer", "register_envs"]

SPLITS = ("all", "train", "test")
_TOKEN_RE = re.compile(r"\w+")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens."""
    return _TOKEN_RE.findall(text.lower())


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace."""
    text = _ARTICLES_RE.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


class BM25:
    """Okapi BM25 ranking over a fixed list of texts.

    Args:
        texts: the documents.
        k1: term-frequency saturation.
        b: length normalisation.

    Example:
        >>> [i for i, _ in BM25(["red apple", "green pear"]).search("apple", 2)]
        [0]
    """

    def __init__(self, texts: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(tokenize(t)) for t in texts]
        self.lengths = [sum(tf.values()) for tf in self.tfs]
        self.avg_len = sum(self.lengths) / max(len(texts), 1)
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(texts)
        self.idf = {w: math.log((n - d + 0.5) / (d + 0.5) + 1.0) for w, d in df.items()}

    def scores(self, query: str) -> list[float]:
        """BM25 score of every document for ``query``."""
        terms = [w for w in tokenize(query) if w in self.idf]
        out = []
        for tf, length in zip(self.tfs, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
            s = 0.0
            for w in terms:
                f = tf.get(w, 0)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top ``k`` (index, score) with score > 0, best first (ties: lower index)."""
        ranked = sorted(enumerate(self.scores(query)), key=lambda x: (-x[1], x[0]))
        return [(i, s) for i, s in ranked[:k] if s > 0]


@dataclass(frozen=True)
class Corpus:
    """The documents, questions and BM25 index (read-only, shared)."""

    docs: tuple[dict[str, str], ...]
    questions: tuple[dict[str, Any], ...]
    index: BM25

    def doc(self, doc_id: str) -> dict[str, str] | None:
        """The document with this id, or None."""
        i = _doc_number(doc_id)
        return self.docs[i] if i is not None and i < len(self.docs) else None


def _doc_number(doc_id: str) -> int | None:
    m = re.fullmatch(r"d(\d{3})", doc_id.strip())
    return int(m.group(1)) if m else None


@lru_cache(maxsize=1)
def load_corpus() -> Corpus:
    """Load the shipped corpus and build its index (cached; the data is read-only)."""
    path = resources.files("agentgym.envs").joinpath("data/search_corpus.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    docs = tuple(data["docs"])
    for i, d in enumerate(docs):
        if d["id"] != f"d{i:03d}":
            raise ConfigError(f"search corpus is corrupt: document {i} has id {d['id']!r}")
    index = BM25([f"{d['title']} {d['text']}" for d in docs])
    return Corpus(docs, tuple(data["questions"]), index)


class SearchQA(ToolEnv):
    """Two-hop question answering with BM25 search and document opening.

    Args:
        split: ``"all"``, ``"train"`` or ``"test"`` questions.
        snippet_chars: characters of each document shown in search results.
        **kwargs: :class:`~agentgym.envs.tool_env.ToolEnv` arguments.
    """

    reward_spec = RewardSpec(
        {
            **TOOL_REWARDS,
            "gold_doc": "+0.1 the first time each gold document is retrieved (search or open) "
            "(process reward: paid on success unless shaping='dense')",
        }
    )
    process_components = frozenset({"well_formed", "tool_ok", "gold_doc"})
    intro = (
        "You answer questions about a private collection of documents. The facts in it are "
        "fictional, so search the documents instead of relying on what you know. Questions "
        "usually need two documents: find the first, read it, then search for the second."
    )
    answer_hint = "the answer alone (a name, place or year)"
    gold_doc_reward = 0.1

    def __init__(self, split: str = "all", snippet_chars: int = 80, **kwargs: Any) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        self.corpus = load_corpus()
        self.split = split
        self.questions = [q for q in self.corpus.questions if split in ("all", q["split"])]
        self.snippet_chars = snippet_chars
        self.task: dict[str, Any] = {}
        self._retrieved: set[str] = set()
        self._credited: set[str] = set()
        super().__init__(**kwargs)

    def make_tools(self) -> list[Tool]:
        """``search`` and ``open``."""
        return [self.search, self.open]

    def new_task(self, options: dict[str, Any]) -> str:
        """Pick the question (seed or ``options["task"]``)."""
        self._retrieved, self._credited = set(), set()
        task = options.get("task")
        if task is None:
            task = self.questions[int(self.np_random.integers(len(self.questions)))]
        elif isinstance(task, int) and not isinstance(task, bool):
            if not 0 <= task < len(self.questions):
                raise ConfigError(
                    f'options["task"]={task} out of range 0..{len(self.questions) - 1}'
                )
            task = self.questions[task]
        elif isinstance(task, str):
            by_id = {q["id"]: q for q in self.corpus.questions}
            if task not in by_id:
                raise ConfigError(
                    f"no question with id {task!r}; ids run q000..q{len(by_id) - 1:03d}"
                )
            task = by_id[task]
        elif not (isinstance(task, dict) and {"question", "answer"} <= set(task)):
            raise ConfigError(
                'options["task"] must be an index, a question id or a dict with '
                f'"question" and "answer" (and optionally "gold_docs"), got {task!r}'
            )
        self.task = {"gold_docs": [], **task}
        return str(self.task["question"])

    def score_answer(self, answer: str) -> Score:
        """Normalised exact match."""
        ok = normalize_answer(answer) == normalize_answer(str(self.task["answer"]))
        return Score.exact(
            ok, "Correct." if ok else f"Incorrect; the answer is {self.task['answer']}."
        )

    def on_tool_result(self, call: ToolCall, result: ToolResult) -> dict[str, float]:
        """``gold_doc`` for gold documents retrieved for the first time."""
        new = (set(self.task["gold_docs"]) & self._retrieved) - self._credited
        self._credited |= new
        return {"gold_doc": self.gold_doc_reward * len(new)} if new else {}

    @tool
    def search(self, query: str, k: int = 5) -> str:
        """Search the documents (BM25) and list the best matches.

        Args:
            query: keywords, e.g. a name or a title.
            k: how many results to return (1 to 10).
        """
        if not 1 <= k <= 10:
            raise ToolError(f"k must be between 1 and 10, got {k}")
        hits = self.corpus.index.search(query, k)
        if not hits:
            return "No documents match; try other keywords."
        lines = []
        for i, _ in hits:
            d = self.corpus.docs[i]
            self._retrieved.add(d["id"])
            text = d["text"]
            snippet = (
                text if len(text) <= self.snippet_chars else text[: self.snippet_chars] + "..."
            )
            lines.append(f"{d['id']} | {d['title']} | {snippet}")
        return "\n".join(lines)

    @tool
    def open(self, doc_id: str) -> str:
        """Return the full text of a document.

        Args:
            doc_id: the document id from the search results, e.g. "d042".
        """
        d = self.corpus.doc(doc_id)
        if d is None:
            raise ToolError(
                f"no document {doc_id!r}; ids look like 'd042' "
                f"(d000..d{len(self.corpus.docs) - 1:03d})"
            )
        self._retrieved.add(d["id"])
        return f"{d['title']}\n\n{d['text']}"


def register_envs() -> None:
    """Register ``agentgym/SearchQA-v0``."""
    register(
        "agentgym/SearchQA-v0",
        entry_point="agentgym.envs.search_qa:SearchQA",
        max_turns=10,
        kwargs={"split": "all"},
    )
