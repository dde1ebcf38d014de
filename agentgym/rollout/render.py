"""Chat templates to token ids, incrementally: the TITO ledger.

The trainer must see exactly the ids the policy sampled. So the ids of each
new observation are computed once, by templating only the new messages, and
appended to the episode's :class:`~agentgym.trajectory.TokenLedger`; sampled
ids are appended as they came.

Templating only the new messages: render ``BASE + new`` and ``BASE`` (a fixed
short conversation ending in an assistant turn) and keep the suffix. After a
sampled turn, the template's closing tokens the sampler did not produce (e.g.
the newline after ``<|im_end|>``) are appended as prompt tokens (mask 0).
Templates that rewrite history are detected and handled with one training
sample per turn (:attr:`ChatRenderer.incremental` is False).

Per-turn cost (it runs once per turn of every episode): the rendered ids of a
message list are memoised (toy and game envs repeat observations); only the new
suffix's *text* is tokenized when it starts at a special token such as
``<|im_start|>`` (a boundary the tokenizer never merges across, so the ids equal
the suffix of the whole); and fast tokenizers are called through their Rust backend
when it agrees with the Python wrapper on a probe. Each shortcut is checked against
the plain path when the renderer is built and switched off where it disagrees.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentgym.errors import ConfigError, TemplateError
from agentgym.policies.base import render_chat, render_chat_text, turn_closing_ids
from agentgym.trajectory import TokenLedger

__all__ = ["ChatRenderer", "EpisodeTokens", "DriftReport", "check_drift"]

_BASE: list[dict[str, Any]] = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U"},
    {"role": "assistant", "content": "A"},
]
_PROBE_NEW: list[dict[str, Any]] = [{"role": "user", "content": "probe message 1"}]


class ChatRenderer:
    r"""Renders chat messages to token ids with a tokenizer's chat template.

    Args:
        tokenizer: a Hugging Face tokenizer with a chat template.
        tools: tool schemas passed to the template (``tools=``) on every render.
        template_kwargs: extra keyword arguments for ``apply_chat_template``.

    Example:
        >>> from agentgym.policies.tinymodels import build_tiny_tokenizer
        >>> r = ChatRenderer(build_tiny_tokenizer())
        >>> ids = r.render([{"role": "user", "content": "hi"}], add_generation_prompt=True)
        >>> r.tokenizer.decode(ids)
        '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'
        >>> r.tokenizer.decode(r.end_of_turn_ids)
        '<|im_end|>\n'
    """

    def __init__(
        self,
        tokenizer: Any,
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if getattr(tokenizer, "chat_template", None) is None:
            raise TemplateError(
                f"tokenizer {type(tokenizer).__name__} has no chat_template; use an instruct/"
                "chat model's tokenizer or set tokenizer.chat_template to a Jinja template"
            )
        self.tokenizer = tokenizer
        self.tools = tools
        self.template_kwargs = dict(template_kwargs or {})
        self._memo: OrderedDict[tuple[str, bool], list[int]] = OrderedDict()
        self._memo_held = 0
        self._encode = self._plain_encode
        self._base_ids = self.render(_BASE)
        self.end_of_turn_ids = self._find_turn_closing()
        self.incremental = self._is_prefix_stable()
        self._base_text = self._text(_BASE)
        self._suffix_head: str | None = None
        self._fast_paths()

    # ------------------------------------------------------------------ basics
    def render(
        self, messages: list[dict[str, Any]], add_generation_prompt: bool = False
    ) -> list[int]:
        """Token ids of ``messages`` rendered by the template (no extra BOS/EOS added)."""
        key = self._key(messages, add_generation_prompt)
        ids = self._memo_get(key)
        if ids is None:
            ids = self._memo_put(key, self._encode(self._text(messages, add_generation_prompt)))
        return list(ids)

    # ------------------------------------------------------------------ speed
    _MEMO_SIZE = 4096
    _MEMO_IDS = 1_000_000  # and at most this many ids held in all (long windowed prompts)

    def _key(self, messages: list[dict[str, Any]], gen: bool) -> tuple[str, bool] | None:
        try:
            return json.dumps(messages, sort_keys=True, ensure_ascii=False), gen
        except (TypeError, ValueError):  # not JSON data: render without the memo
            return None

    def _memo_get(self, key: tuple[str, bool] | None) -> list[int] | None:
        if key is None:
            return None
        ids = self._memo.get(key)
        if ids is not None:
            self._memo.move_to_end(key)
        return ids

    def _memo_put(self, key: tuple[str, bool] | None, ids: list[int]) -> list[int]:
        if key is not None and key not in self._memo:
            self._memo[key] = ids
            self._memo_held += len(ids)
            while self._memo and (
                len(self._memo) > self._MEMO_SIZE or self._memo_held > self._MEMO_IDS
            ):
                self._memo_held -= len(self._memo.popitem(last=False)[1])
        return ids

    def _text(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        return render_chat_text(
            self.tokenizer,
            messages,
            add_generation_prompt=add_generation_prompt,
            tools=self.tools,
            template_kwargs=self.template_kwargs,
        )

    def _plain_encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _fast_paths(self) -> None:
        """Switch on the shortcuts that give the plain path's ids on a probe."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        probe = self._text(_BASE + _PROBE_NEW, True)
        if backend is not None and hasattr(backend, "encode"):
            try:
                ok = list(backend.encode(probe, add_special_tokens=False).ids)
            except Exception:
                ok = None
            if ok == self._plain_encode(probe):
                self._encode = lambda text: list(backend.encode(text, add_special_tokens=False).ids)
        suffix = probe[len(self._base_text) :] if probe.startswith(self._base_text) else ""
        specials = [str(t) for t in getattr(self.tokenizer, "all_special_tokens", ()) if t]
        self._suffix_head = next((t for t in specials if suffix.startswith(t)), None)
        want = render_chat(
            self.tokenizer,
            _BASE + _PROBE_NEW,
            add_generation_prompt=True,
            tools=self.tools,
            template_kwargs=self.template_kwargs,
        )
        if not self.incremental or self._suffix_by_text(_PROBE_NEW) != want[len(self._base_ids) :]:
            self._suffix_head = None

    def _suffix_by_text(self, new_messages: list[dict[str, Any]]) -> list[int] | None:
        """Ids of the new messages from their text alone, when that is exact (else None).

        Exact when the suffix starts with the special token the probe's suffix started
        with (checked in :meth:`_fast_paths`): the tokenizer splits there before anything
        else, so the ids of the whole are the ids of the base then those of the suffix.
        """
        if self._suffix_head is None:
            return None
        full = self._text(_BASE + list(new_messages), True)
        if not full.startswith(self._base_text):
            return None
        suffix = full[len(self._base_text) :]
        if not suffix.startswith(self._suffix_head):
            return None  # the tokenizer might merge across the cut
        return self._encode(suffix)

    @property
    def stop_token_id(self) -> int:
        """The id that ends an assistant turn (first of the template's closing tokens)."""
        return self.end_of_turn_ids[0]

    def _find_turn_closing(self) -> list[int]:
        """Closing tokens of an assistant turn (see :func:`.base.turn_closing_ids`)."""
        return turn_closing_ids(self.tokenizer, self.tools, self.template_kwargs)

    def _is_prefix_stable(self) -> bool:
        longer = self.render(_BASE + _PROBE_NEW + [{"role": "assistant", "content": "B"}])
        return longer[: len(self._base_ids)] == self._base_ids

    # ------------------------------------------------------------- incremental
    def initial_ids(self, messages: list[dict[str, Any]]) -> list[int]:
        """Ids of the first observation, ending with the generation prompt."""
        return self.render(messages, add_generation_prompt=True)

    def continuation_ids(self, new_messages: list[dict[str, Any]]) -> list[int]:
        """Ids that follow a closed assistant turn: ``new_messages`` + generation prompt."""
        key = self._key([{"continuation": list(new_messages)}], True)
        ids = self._memo_get(key)
        if ids is not None:
            return list(ids)
        ids = self._suffix_by_text(new_messages)
        if ids is None:
            full = self._encode(self._text(_BASE + list(new_messages), True))
            if full[: len(self._base_ids)] != self._base_ids:
                raise TemplateError(
                    "rendering new messages changed the tokens of earlier ones; "
                    "this template is not prefix-stable for these messages"
                )
            ids = full[len(self._base_ids) :]
        return list(self._memo_put(key, ids))

    def closing_ids(self, sampled: Sequence[int], finish_reason: str) -> list[int]:
        """Template tokens to append after a sampled turn that the sampler did not emit."""
        closing = self.end_of_turn_ids
        if finish_reason == "stop" and sampled and sampled[-1] == closing[0]:
            return list(closing[1:])
        return list(closing)


class EpisodeTokens:
    """The token ledger of one episode, grown turn by turn.

    Usage: ``start(obs)``, then repeatedly ``prompt_ids()`` → sample →
    ``add_turn(ids, logprobs, finish)`` → ``add_observation(new_msgs)``.

    Args:
        renderer: the chat renderer.
        history: ``None`` keeps the whole conversation in the prompt (one
            growing, token-exact sequence per episode). An int ``k`` keeps only
            the leading system messages and the last ``k`` turns before the
            newest observation (``0``: the newest observation alone); the
            prompt is then re-rendered each turn and every turn becomes its own
            training sample (``per_turn``), still with the exact sampled ids.
    """

    def __init__(self, renderer: ChatRenderer, history: int | None = None) -> None:
        if history is not None and history < 0:
            raise ConfigError(f"history must be >= 0 or None, got {history}")
        self.renderer = renderer
        self.history = history
        self.ledger = TokenLedger()
        windowed = history is not None or not renderer.incremental
        self.per_turn: list[TokenLedger] | None = [] if windowed else None
        self.messages: list[dict[str, Any]] = []
        self._closed_at = 0
        self._prompt: list[int] | None = None  # per-turn mode: this turn's rendered prompt

    def context(self) -> list[dict[str, Any]]:
        """The messages the policy sees now (all of them unless ``history`` is set)."""
        if self.history is None:
            return list(self.messages)
        lead = 0
        while lead < len(self.messages) and self.messages[lead].get("role") == "system":
            lead += 1
        turns = [i for i, m in enumerate(self.messages) if m.get("role") == "assistant"]
        if len(turns) <= self.history:
            return list(self.messages)
        cut = turns[-(self.history + 1)] + 1
        return self.messages[:lead] + self.messages[max(cut, lead) :]

    def start(self, messages: list[dict[str, Any]]) -> None:
        """Begin with the env's first observation."""
        self.messages = list(messages)
        self._prompt = None
        if self.per_turn is None:
            self.ledger.add_prompt(self.renderer.initial_ids(messages))

    def prompt_ids(self) -> list[int]:
        """The ids the policy continues from now."""
        if self.per_turn is None:
            return list(self.ledger.input_ids)
        if self._prompt is None:  # rendered once per turn, however often it is asked for
            self._prompt = self.renderer.render(self.context(), add_generation_prompt=True)
        return list(self._prompt)

    def add_turn(
        self, ids: list[int], logprobs: list[float], finish_reason: str, text: str
    ) -> None:
        """Append a sampled assistant turn and the template's closing tokens."""
        if self.per_turn is None:
            self.ledger.add_sampled(ids, logprobs)
            self.ledger.add_prompt(self.renderer.closing_ids(ids, finish_reason))
            self._closed_at = len(self.ledger)
        else:
            sample = TokenLedger()
            sample.add_prompt(self.prompt_ids())
            sample.add_sampled(ids, logprobs)
            self.per_turn.append(sample)
        self.messages.append({"role": "assistant", "content": text})
        self._prompt = None

    def add_observation(self, messages: list[dict[str, Any]]) -> None:
        """Append the env's reply; its ids are computed once, here."""
        self.messages.extend(messages)
        self._prompt = None
        if self.per_turn is None and messages:
            self.ledger.add_prompt(self.renderer.continuation_ids(messages))

    def trim_trailing_prompt(self) -> None:
        """Drop prompt tokens after the last sampled turn (nothing there is trained on)."""
        if self.per_turn is not None or not self.ledger.turn_spans:
            return
        for name in ("input_ids", "loss_mask", "logprobs"):
            del getattr(self.ledger, name)[self._closed_at :]


@dataclass(frozen=True)
class DriftReport:
    """Result of comparing a ledger with a full re-render of its conversation."""

    ok: bool
    position: int | None
    """First index where the two id lists differ (None if they match)."""
    ledger_len: int
    rerender_len: int
    detail: str

    def __str__(self) -> str:
        return self.detail


def check_drift(
    renderer: ChatRenderer,
    ledger: TokenLedger,
    messages: list[dict[str, Any]],
    context: int = 8,
) -> DriftReport:
    """Compare ``ledger.input_ids`` with ``renderer.render(messages)``.

    ``messages`` is the conversation the ledger covers (ending with the last
    assistant turn). A mismatch usually means re-tokenising sampled text gives
    other ids than were sampled, or the template is not prefix-stable.
    """
    full = render_chat(  # the plain path, not the renderer's shortcuts: an independent check
        renderer.tokenizer,
        messages,
        tools=renderer.tools,
        template_kwargs=renderer.template_kwargs,
    )
    got = ledger.input_ids
    n = min(len(full), len(got))
    pos = next((i for i in range(n) if full[i] != got[i]), None)
    if pos is None and len(full) == len(got):
        return DriftReport(True, None, len(got), len(full), "ledger matches the full re-render")
    if pos is None:
        pos = n
    tok = renderer.tokenizer
    lo = max(0, pos - context)
    detail = (
        f"ledger and re-render differ at token {pos} (ledger has {len(got)} ids, re-render "
        f"{len(full)}): ledger …{tok.decode(got[lo : pos + context])!r} vs re-render "
        f"…{tok.decode(full[lo : pos + context])!r}"
    )
    return DriftReport(False, pos, len(got), len(full), detail)
