"""The Policy protocol: token ids in; token ids and per-token logprobs out, batched."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from agentgym.errors import ConfigError, PolicyError

__all__ = [
    "SamplingParams",
    "Request",
    "Generation",
    "Policy",
    "check_prompts",
    "request_cap",
    "request_seed",
    "sampled_generation",
]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one assistant turn."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    max_new_tokens: int = 256
    """Upper bound on sampled tokens per turn."""
    stop_token_ids: tuple[int, ...] = ()
    """Extra ids that end a turn (the tokenizer's end-of-turn id is always one)."""
    seed: int | None = None
    """Seed for the sampler's RNG; None draws fresh randomness."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class Request:
    """One prompt to continue: its token ids and, for text backends, the messages."""

    prompt_ids: list[int]
    messages: list[dict[str, Any]] = field(default_factory=list)
    max_new_tokens: int | None = None
    """Per-request cap (e.g. what is left of an episode's token budget)."""


@dataclass
class Generation:
    """A sampled continuation: ids, one logprob per id, and why it stopped.

    ``logprobs[i]`` is the log-probability of ``token_ids[i]`` under the
    temperature-scaled distribution the sampler drew from. ``token_ids``
    includes the end-of-turn token when ``finish_reason == "stop"``.
    """

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: Literal["stop", "length"] = "stop"


@runtime_checkable
class Policy(Protocol):
    """What the collector needs from a policy backend.

    ``tokenizer`` is a Hugging Face tokenizer with a chat template; the
    collector renders observations with it, so ids given to ``generate`` are
    exactly the ids the trainer will see.
    """

    tokenizer: Any

    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        """Sample one continuation per request, batched where the backend can."""
        ...


def request_cap(request: Request, params: SamplingParams) -> int:
    """Tokens ``request`` may sample: ``min(params.max_new_tokens, request.max_new_tokens)``."""
    if request.max_new_tokens is None:
        return params.max_new_tokens
    return max(0, min(params.max_new_tokens, int(request.max_new_tokens)))


def request_seed(seed: int | None, call: int, index: int) -> int | None:
    """A per-request seed for backends that seed each request (vLLM, HTTP servers).

    Derived from the call's ``seed``, the backend's call counter and the request's
    index, so the G copies of a task draw different samples and the same calls in
    the same order draw the same ones; None when ``seed`` is None.
    """
    if seed is None:
        return None
    return (int(seed) * 1_000_003 + call * 65_537 + index) % (2**31 - 1)


def check_prompts(requests: Sequence[Request]) -> None:
    """Raise :class:`PolicyError` for a request without prompt ids."""
    for i, r in enumerate(requests):
        if not r.prompt_ids:
            raise PolicyError(f"request {i} has no prompt_ids; render the prompt first")


def sampled_generation(
    ids: Sequence[int],
    logprobs: Sequence[float],
    finish_reason: str | None,
    stop: Collection[int],
    source: str,
) -> Generation:
    """A :class:`Generation` from an engine's answer, checked for token-exact training.

    One finite logprob per id, and a turn that stopped ends with its stop id (the
    trainer must see it); ``source`` names the engine in the error. Any reason other
    than ``"stop"`` counts as ``"length"``.

    Raises:
        PolicyError: the answer breaks one of those rules.
    """
    ids, logprobs = [int(t) for t in ids], [float(x) for x in logprobs]
    if len(logprobs) != len(ids) or not all(math.isfinite(x) for x in logprobs):
        raise PolicyError(
            f"{source} returned {len(ids)} token ids but {len(logprobs)} logprobs "
            "(or non-finite ones)"
        )
    if finish_reason == "stop" and (not ids or ids[-1] not in stop):
        raise PolicyError(
            f"{source} ended a turn without returning the stop token (token-exact "
            "training needs it)"
        )
    return Generation(ids, logprobs, "stop" if finish_reason == "stop" else "length")
