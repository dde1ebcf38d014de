"""The Policy protocol, and the token helpers every backend shares.

Policies take token ids in and give token ids and logprobs out, batched; the helpers
render chat templates and find the ids that end an assistant turn.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from agentgym.errors import ConfigError, PolicyError, TemplateError

__all__ = [
    "SamplingParams",
    "Request",
    "Generation",
    "Policy",
    "check_prompts",
    "request_cap",
    "request_seed",
    "sampled_generation",
    "render_chat",
    "render_chat_text",
    "turn_closing_ids",
    "end_of_turn_id",
    "stop_token_ids",
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
    seed: int | None = None
    """This request's own sampler seed; set, it decides the sample whatever else shares
    the batch (the collector derives it from the sampling seed, task, sample and turn).
    None: the backend derives one from ``SamplingParams.seed`` and call order."""
    session_id: str | None = None
    """The episode this turn belongs to; backends with several servers send every turn
    of a session to the same one (its prefix cache holds the conversation)."""


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


def request_seed(
    seed: int | None, call: int, index: int, request: Request | None = None
) -> int | None:
    """A per-request seed for backends that seed each request (vLLM, HTTP servers).

    ``request.seed`` when set; otherwise derived from the call's ``seed``, the
    backend's call counter and the request's index, so the G copies of a task draw
    different samples and the same calls in the same order draw the same ones; None
    when ``seed`` is None.
    """
    if request is not None and request.seed is not None:
        return int(request.seed) % (2**31 - 1)
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


# --------------------------------------------------------------------------- tokens
# Helpers every backend shares; the collector's renderer (agentgym.rollout.render)
# builds on render_chat and turn_closing_ids, so both agree on where a turn ends.
_PROBE: list[dict[str, Any]] = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U"},
]


def render_chat_text(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = False,
    tools: list[dict[str, Any]] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> str:
    """``messages`` rendered by the tokenizer's chat template, as text.

    Raises:
        TemplateError: the template failed to render the messages.
    """
    try:
        text = tokenizer.apply_chat_template(
            messages,
            tools=tools,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **(template_kwargs or {}),
        )
    except Exception as e:
        raise TemplateError(
            f"the chat template failed to render {len(messages)} messages: {e}"
        ) from e
    return str(text)


def render_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = False,
    tools: list[dict[str, Any]] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> list[int]:
    """Token ids of ``messages`` rendered by the tokenizer's chat template (no extra BOS/EOS).

    Raises:
        TemplateError: the template failed to render the messages.
    """
    text = render_chat_text(
        tokenizer,
        messages,
        add_generation_prompt=add_generation_prompt,
        tools=tools,
        template_kwargs=template_kwargs,
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def turn_closing_ids(
    tokenizer: Any,
    tools: list[dict[str, Any]] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> list[int]:
    """The tokens a chat template puts after an assistant message (e.g. ``<|im_end|>``).

    Found as the common suffix of two different rendered assistant turns; the
    tokenizer's eos id when they share none.

    Raises:
        TemplateError: the generation prompt is not a prefix of a rendered assistant
            turn, or no closing token can be found.
    """
    kw: dict[str, Any] = {"tools": tools, "template_kwargs": template_kwargs}
    pre = render_chat(tokenizer, _PROBE, add_generation_prompt=True, **kw)
    one = render_chat(tokenizer, _PROBE + [{"role": "assistant", "content": "A"}], **kw)
    two = render_chat(tokenizer, _PROBE + [{"role": "assistant", "content": "Zq 42"}], **kw)
    if one[: len(pre)] != pre or two[: len(pre)] != pre:
        raise TemplateError(
            "the chat template's generation prompt is not a prefix of a rendered "
            "assistant turn; agentgym cannot place sampled tokens in the conversation"
        )
    a, b = one[len(pre) :], two[len(pre) :]
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    if n:
        return list(a[len(a) - n :])
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise TemplateError("cannot find the template's end-of-turn token and no eos_token_id")
    return [int(eos)]


def end_of_turn_id(tokenizer: Any) -> int:
    """The token id that closes an assistant turn for ``tokenizer``.

    Taken from the chat template (the first token it puts after an assistant
    message, e.g. ``<|im_end|>`` for ChatML), which is what the collector's
    renderer expects; without a usable template, the tokenizer's eos id.

    Raises:
        ConfigError: if neither a chat template nor an eos token gives one.
    """
    try:
        return int(turn_closing_ids(tokenizer)[0])
    except TemplateError:
        eos = getattr(tokenizer, "eos_token_id", None)
        if eos is None:
            raise ConfigError(
                f"tokenizer {type(tokenizer).__name__} has neither a chat template nor an "
                "eos token, so the end of an assistant turn is unknown; set "
                "tokenizer.chat_template or tokenizer.eos_token"
            ) from None
        return int(eos)


def _as_ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [int(v) for v in value]
    return [int(value)]


def stop_token_ids(tokenizer: Any, model: Any = None) -> frozenset[int]:
    """Ids that end an assistant turn for this tokenizer (and model).

    The tokenizer's eos id, the chat template's end-of-turn id when it is a
    special token (e.g. ``<|im_end|>``, ``<|eot_id|>``), and the model's
    ``generation_config.eos_token_id`` (an id or a list).
    """
    ids = set(_as_ids(getattr(tokenizer, "eos_token_id", None)))
    try:
        eot = end_of_turn_id(tokenizer)
    except ConfigError:
        eot = None
    if eot is not None and eot in set(getattr(tokenizer, "all_special_ids", ())):
        ids.add(eot)
    gen_config = getattr(model, "generation_config", None)
    ids.update(_as_ids(getattr(gen_config, "eos_token_id", None)))
    if not ids:
        raise ConfigError(
            "no end-of-turn token: the tokenizer has no eos token and the model's "
            "generation_config none either; set tokenizer.eos_token"
        )
    return frozenset(ids)
