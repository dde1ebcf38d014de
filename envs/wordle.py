"""Wordle: guess a secret five-letter word from per-letter feedback.

``agentgym/Wordle-v0`` (``max_turns=6``) draws the secret from the seed out of
1,557 common words (``envs/data/wordle_answers.txt``); a guess may be any of
6,748 words (``envs/data/wordle_allowed.txt``). Both lists come from Debian's
wamerican (SCOWL) lists, filtered by frequency. ``options={"word": "crane"}``
(or ``{"task": "crane"}``, or ``{"task": n}`` for answer ``n``) fixes the secret.

A guess is ``<guess>word</guess>`` anywhere in the reply (the last one counts)
or the bare word alone. Feedback marks each letter: ``G`` right letter in the
right spot, ``Y`` in the word elsewhere, ``-`` not in the word (or no more
copies of it: repeated letters are scored as in the real game), and lists the
letters known to be absent::

    Guess 1:
    C R A N E
    - Y - - G
    Not in the word: A C N

An invalid guess (not letters, not five letters, not in the word list, more
than one word) is rejected with a message saying why and a ``format``
penalty; it reveals nothing about the secret, **but it uses one of the
turns** (the registered turn limit counts steps). The episode terminates
when the word is found; running out of turns truncates it.

Reward components (turn reward = weighted sum, all weights 1 by default):

| component   | value                                                                   |
|-------------|-------------------------------------------------------------------------|
| `info_gain` | per valid guess: log2(candidates before / after) / log2(#answers), where |
|             | candidates are the answers consistent with all feedback so far (sums to |
|             | 1 over a solved game); a process reward, paid on success (see below)    |
| `format`    | -0.1 (`-format_penalty`) for an invalid guess                           |
| `outcome`   | 1.0 on the guess that finds the word                                    |

``info_gain`` is reported every turn in ``info["reward_components"]`` but, by
default (``shaping="gated"``, :mod:`agentgym.envs.shaping`), paid only on the
guess that finds the word, where it always sums to 1: a solved game earns 2.0
as before, and a failed one (the word not found by the turn limit) at most 0,
its outcome. ``shaping="dense"`` pays it
guess by guess: farmable, since informative guesses that never aim at the word
then earn up to 1 without solving (repeating ``crane`` six times earns about
0.5, alternating ``crane`` and ``slate`` about 0.8).

``info["candidates_left"]`` counts the answers still consistent with the
feedback; ``info["success"]`` is True once the word is found.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium

from agentgym.core import Message, system, user
from agentgym.envs.shaping import ShapedEnv
from agentgym.errors import ActionParseError, ConfigError
from agentgym.registry import register
from agentgym.rewards import RewardSpec

from ._parsing import parse_word, preview

__all__ = ["Wordle", "score_guess", "load_words", "register_envs"]

WORD_LENGTH = 5
_WORD_RE = re.compile(r"[a-z]+")


def score_guess(guess: str, secret: str) -> str:
    """Wordle feedback for ``guess`` against ``secret``: one of ``G``, ``Y``, ``-`` per letter.

    Greens are marked first; then each other letter is ``Y`` while the
    secret still has unmatched copies of it, left to right, else ``-``.

    Example:
        >>> score_guess("speed", "abide")
        '--Y-Y'
    """
    marks = ["-"] * len(guess)
    unmatched: Counter[str] = Counter()
    for i, (g, s) in enumerate(zip(guess, secret, strict=True)):
        if g == s:
            marks[i] = "G"
        else:
            unmatched[s] += 1
    for i, g in enumerate(guess):
        if marks[i] != "G" and unmatched[g] > 0:
            marks[i] = "Y"
            unmatched[g] -= 1
    return "".join(marks)


@functools.lru_cache(maxsize=8)
def load_words(name: str) -> tuple[str, ...]:
    """A word list shipped in ``agentgym/envs/data`` (``#`` lines are comments)."""
    path = importlib.resources.files(__package__).joinpath("data", name)
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def _clean_list(words: Iterable[str], what: str) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(w.strip().lower() for w in words))
    bad = [w for w in out if len(w) != WORD_LENGTH or not _WORD_RE.fullmatch(w)]
    if bad or not out:
        raise ConfigError(
            f"{what} must be non-empty and hold {WORD_LENGTH}-letter a-z words; "
            f"bad entries: {bad[:5]}"
        )
    return out


class Wordle(ShapedEnv):
    """Guess the five-letter secret word; see the module docstring for the rules.

    Args:
        answers: possible secrets (default: the shipped list of common words).
        allowed: accepted guesses (default: the shipped list); answers are
            always accepted too.
        format_penalty: magnitude of the ``format`` component for an invalid guess.
        render_mode: ``"ansi"``, ``"human"`` or None.
        reward_weights: per-component weight overrides.
        shaping: ``"gated"`` (default): ``info_gain`` is paid only on the
            guess that finds the word; ``"dense"``: every guess (farmable).

    Example:
        >>> env = Wordle()
        >>> obs, info = env.reset(options={"word": "crane"})
        >>> env.step("<guess>slate</guess>")[0][0]["content"].splitlines()[2]
        '- - G - G'
    """

    reward_spec: ClassVar[RewardSpec] = RewardSpec(
        {
            "info_gain": "log2(candidates before / after) / log2(#answers) per valid guess "
            "(process reward: paid on success unless shaping='dense')",
            "format": "-format_penalty (default -0.1) for an invalid guess",
            "outcome": "1.0 on the guess that finds the word",
        }
    )
    process_components: ClassVar[frozenset[str]] = frozenset({"info_gain"})

    def __init__(
        self,
        answers: Sequence[str] | None = None,
        allowed: Sequence[str] | None = None,
        format_penalty: float = 0.1,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
        shaping: str = "gated",
    ) -> None:
        super().__init__(render_mode=render_mode, reward_weights=reward_weights, shaping=shaping)
        self.answers = _clean_list(
            answers if answers is not None else load_words("wordle_answers.txt"), "answers"
        )
        allowed_words = allowed if allowed is not None else load_words("wordle_allowed.txt")
        self.allowed = frozenset(_clean_list(allowed_words, "allowed")) | set(self.answers)
        self.format_penalty = float(format_penalty)
        self.secret = ""
        self._candidates: list[str] = []
        self._norm = 1.0
        self._guesses: list[str] = []
        self._absent: set[str] = set()
        self._solved = False

    def _pick_secret(self, options: Mapping[str, Any]) -> str:
        task = options.get("word", options.get("task"))
        if task is None:
            return self.answers[int(self.np_random.integers(len(self.answers)))]
        if isinstance(task, int) and not isinstance(task, bool):
            return self.answers[task % len(self.answers)]
        word = str(task).strip().lower()
        if len(word) != WORD_LENGTH or not _WORD_RE.fullmatch(word):
            raise ConfigError(f"options['word'] must be {WORD_LENGTH} letters a-z, got {task!r}")
        return word

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Draw a secret word (from the seed, or ``options["word"]``)."""
        super().reset(seed=seed)
        self.secret = self._pick_secret(options or {})
        self._candidates = list(self.answers)
        if self.secret not in self.answers:
            self._candidates.append(self.secret)
        self._norm = math.log2(len(self._candidates)) if len(self._candidates) > 1 else 1.0
        self._guesses, self._absent, self._solved = [], set(), False
        rules = (
            "Wordle. Guess the secret five-letter English word. After each guess you get "
            "one mark per letter: G = right letter in the right spot, Y = in the word but "
            "in another spot, - = not in the word (or no more copies of it). "
            "Reply with one guess: <guess>word</guess> or just the word."
        )
        return self.begin(
            [system(rules), user("Guess the five-letter word.")],
            {"candidates_left": len(self._candidates)},
        )

    def check_guess(self, text: str) -> str:
        """The guess in ``text``, lowercased.

        Raises:
            ActionParseError: no single valid five-letter word from the list.
        """
        try:
            word = parse_word(text, "guess", noun="guess")
        except ActionParseError as e:
            raise ActionParseError(f"{e} Reply with one word, e.g. <guess>crane</guess>.") from None
        if not _WORD_RE.fullmatch(word):
            raise ActionParseError(f"{preview(word)} is not a word: use only the letters a-z.")
        if len(word) != WORD_LENGTH:
            raise ActionParseError(
                f"{preview(word)} has {len(word)} letters; guesses have exactly {WORD_LENGTH}."
            )
        if word not in self.allowed:
            raise ActionParseError(
                f"{preview(word)} is not in the word list; guess a common English "
                f"{WORD_LENGTH}-letter word."
            )
        return word

    def step(self, action: str) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Score one guess; an invalid one is rejected with a message and a penalty."""
        if not self.secret:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        text = action if isinstance(action, str) else str(action)
        info = {"candidates_left": len(self._candidates)}
        if self._solved:
            msg = user("The word was already found; call reset() to play again.")
            return self.turn([msg], {}, terminated=True, action=text, info=info)
        try:
            guess = self.check_guess(text)
        except ActionParseError as e:
            why = f"Invalid guess. {e} This turn counts but reveals nothing."
            return self.turn([user(why)], {"format": -self.format_penalty}, action=text, info=info)
        marks = score_guess(guess, self.secret)
        before = len(self._candidates)
        self._candidates = [c for c in self._candidates if score_guess(guess, c) == marks]
        gain = math.log2(before / len(self._candidates)) / self._norm
        self._guesses.append(guess)
        # A guessed letter with no G or Y anywhere in its guess is absent from the secret.
        self._absent |= {g for g in guess if g not in self.secret}
        solved = guess == self.secret
        lines = [
            f"Guess {len(self._guesses)}:",
            " ".join(guess.upper()),
            " ".join(marks),
        ]
        if solved:
            self._solved = True
            lines.append(f"Solved in {len(self._guesses)} guesses!")
        elif self._absent:
            lines.append("Not in the word: " + " ".join(sorted(self._absent)).upper())
        parts = {"info_gain": gain}
        if solved:
            parts["outcome"] = 1.0
        info["candidates_left"] = len(self._candidates)
        return self.turn(
            [user("\n".join(lines))],
            parts,
            terminated=solved,
            outcome=1.0 if solved else None,
            success=True if solved else None,
            action=text,
            info=info,
        )


def register_envs() -> None:
    """Register ``agentgym/Wordle-v0`` (idempotent)."""
    register("agentgym/Wordle-v0", entry_point="agentgym.envs.wordle:Wordle", max_turns=6)
