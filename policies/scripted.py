"""Policies without a model: a Python function, or a random pick among fixed texts.

They speak the same token protocol as the model backends: the text is encoded
with the tokenizer (no special tokens) and the end-of-turn id is appended, so
the collector and the trainer treat a scripted turn exactly like a sampled one
(logprobs are all 0.0: the script is deterministic). Useful as baselines, for
demonstrations (supervised warm starts) and in tests.

Example:
    >>> from agentgym.policies.base import Request, SamplingParams
    >>> from agentgym.policies.tinymodels import build_tiny_tokenizer
    >>> tokenizer = build_tiny_tokenizer(words=["left"])
    >>> policy = ScriptedPolicy(lambda msgs: "left", tokenizer)
    >>> msgs = [{"role": "user", "content": "Where to?"}]
    >>> gen = policy.generate([Request(prompt_ids=[1, 2], messages=msgs)], SamplingParams())[0]
    >>> tokenizer.decode(gen.token_ids)
    'left<|im_end|>'
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from agentgym.errors import ConfigError, PolicyError
from agentgym.policies.base import (
    Generation,
    Request,
    SamplingParams,
    end_of_turn_id,
    request_cap,
)

__all__ = ["ScriptedPolicy", "RandomChoicePolicy"]


class ScriptedPolicy:
    """A policy whose assistant text comes from ``fn(messages)``.

    Args:
        fn: called with the conversation so far (``Request.messages``, a list of
            message dicts) and returns the assistant's text for this turn.
        tokenizer: a Hugging Face tokenizer; encodes the text and provides the
            end-of-turn id (see :func:`end_of_turn_id`).

    ``generate`` returns the text's ids plus the end-of-turn id with
    ``finish_reason="stop"``; if that is longer than the request's token cap
    (``min(params.max_new_tokens, request.max_new_tokens)``) the ids are cut to
    the cap and ``finish_reason="length"``. A text containing one of
    ``params.stop_token_ids`` ends right after it, as a sampled turn would.
    All logprobs are 0.0.
    """

    def __init__(self, fn: Callable[[list[dict[str, Any]]], str], tokenizer: Any) -> None:
        if not callable(fn):
            raise ConfigError(f"ScriptedPolicy needs a callable fn(messages) -> str, got {fn!r}")
        self.fn = fn
        self.tokenizer = tokenizer
        self.eot_id = end_of_turn_id(tokenizer)

    def _text(self, request: Request) -> str:
        return self.fn(list(request.messages))

    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        """One scripted turn per request (see the class docstring)."""
        return [self._one(self._text(r), request_cap(r, params), params) for r in requests]

    def _one(self, text: str, cap: int, params: SamplingParams) -> Generation:
        if not isinstance(text, str):
            raise PolicyError(
                f"the scripted policy's function returned {type(text).__name__}, expected str"
            )
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        stops = set(params.stop_token_ids)
        cut = next((i for i, t in enumerate(ids) if t in stops), None)
        ids = ids[: cut + 1] if cut is not None else ids + [self.eot_id]
        finish = "stop"
        if len(ids) > cap:
            ids, finish = ids[:cap], "length"
        return Generation(token_ids=ids, logprobs=[0.0] * len(ids), finish_reason=finish)


class RandomChoicePolicy(ScriptedPolicy):
    """Answers each request with one of ``choices``, uniformly at random.

    Reproducible: two policies built with the same ``seed`` give the same
    answers (the RNG belongs to the policy; ``SamplingParams.seed`` is not used).
    Requests with a ``session_id`` (the collector sets one per episode) draw from a
    stream of their session's own, seeded from (``seed``, session), so the answers
    do not depend on the order in which episodes reach the policy; other requests
    share one stream, in call order.

    Args:
        choices: the candidate assistant texts (at least one).
        tokenizer: as for :class:`ScriptedPolicy`.
        seed: seeds this policy's own RNG.
    """

    def __init__(self, choices: Sequence[str], tokenizer: Any, seed: int | None = 0) -> None:
        choices = list(choices)
        if not choices or not all(isinstance(c, str) for c in choices):
            raise ConfigError(
                f"RandomChoicePolicy needs a non-empty list of strings, got {choices!r}"
            )
        self.choices = choices
        self.seed = seed
        self.rng = random.Random(seed)
        self._sessions: dict[str, random.Random] = {}
        super().__init__(lambda _messages: self.rng.choice(self.choices), tokenizer)

    def _text(self, request: Request) -> str:
        if request.session_id is None:
            return super()._text(request)
        rng = self._sessions.get(request.session_id)
        if rng is None:
            rng = self._sessions[request.session_id] = random.Random(
                f"{self.seed}:{request.session_id}"
            )
        return rng.choice(self.choices)
