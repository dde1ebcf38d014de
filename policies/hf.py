"""A transformers policy: batched sampling with exact per-token logprobs.

:class:`HFPolicy` runs its own sampling loop (not ``model.generate``) so that it
knows exactly which distribution each token was drawn from:

- all requests of a call are decoded together (in chunks of ``batch_size``),
  left-padded, with an attention mask and position ids counted from each
  row's first real token, and a KV cache; rows that finish are dropped from
  the batch (and from the cache), so they stop costing compute;
- ``temperature == 0`` is greedy (argmax); otherwise a token is drawn from
  ``softmax(logits / temperature)``, restricted to the top-p nucleus when
  ``top_p < 1``;
- ``logprobs[i]`` is ``log_softmax(logits / temperature)`` at the sampled token,
  over the *whole* vocabulary: it is **not** renormalised to the top-p nucleus,
  because the trainer recomputes logprobs with a plain forward pass at the same
  temperature and the two must agree. With ``temperature == 0`` it is the
  log-probability under the untempered distribution (``temperature = 1``);
- a turn ends at an end-of-turn token (the tokenizer's eos, the chat
  template's end-of-turn token such as ``<|im_end|>``, the model's
  ``generation_config.eos_token_id``, and ``params.stop_token_ids``): the stop
  token is included in ``token_ids`` and ``finish_reason == "stop"``; a turn
  cut by ``max_new_tokens`` has ``finish_reason == "length"``.

Randomness: a request with its own ``Request.seed`` (the collector sets one per
turn) draws from a stream of its own, by inverse-CDF sampling with uniforms from
``random.Random(seed)``, so its sample does not depend on which requests share its
batch (up to float rounding of the batched forward pass). Otherwise, with
``params.seed`` set, draws come from a ``torch.Generator`` seeded with it, so the
same seed, requests (in the same order) and ``batch_size`` give the same samples;
with ``seed=None`` they come from torch's global RNG (whoever owns the process may
seed it).

Example:
    >>> from agentgym.policies.base import Request, SamplingParams, render_chat
    >>> from agentgym.policies.tinymodels import build_tiny_chat_model
    >>> policy = HFPolicy.from_pretrained(build_tiny_chat_model("tiny"), device="cpu")
    >>> messages = [{"role": "user", "content": "hi"}]
    >>> ids = render_chat(policy.tokenizer, messages, add_generation_prompt=True)
    >>> params = SamplingParams(temperature=0.7, max_new_tokens=5, seed=0)
    >>> [gen] = policy.generate([Request(prompt_ids=ids)], params)
    >>> len(gen.token_ids) == len(gen.logprobs) <= 5, gen.finish_reason in ("stop", "length")
    (True, True)
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from typing import Any

from agentgym.errors import ConfigError, DependencyMissing, PolicyError, require
from agentgym.policies.base import (
    Generation,
    Request,
    SamplingParams,
    check_prompts,
    request_cap,
    stop_token_ids,
)

__all__ = ["HFPolicy"]


def _torch() -> Any:
    return require("torch", "hf", "the transformers policy")


def _resolve_dtype(torch: Any, dtype: Any) -> Any:
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise ConfigError(
            f"dtype must be a torch.dtype, 'auto' or a name such as 'float32' or "
            f"'bfloat16', got {dtype!r}"
        )
    return resolved


class HFPolicy:
    """A Hugging Face causal LM as an agentgym policy (see the module docstring).

    Args:
        model: a ``transformers`` causal LM (``AutoModelForCausalLM``).
        tokenizer: its tokenizer, with a chat template for the collector.
        device: where to run; the model is moved there. Default: the model's device.
        batch_size: at most this many requests decoded together (default: all).

    Attributes:
        model: the model (the trainer updates it in place).
        tokenizer: the tokenizer.
        device: the ``torch.device`` generation runs on.
        stop_ids: ids that always end a turn (see :func:`stop_token_ids`).
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, device: Any = None, batch_size: int | None = None
    ) -> None:
        torch = _torch()
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 or None, got {batch_size}")
        if device is not None:
            self.device = torch.device(device)
            model.to(self.device)
        else:
            self.device = next(model.parameters()).device
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stop_ids = stop_token_ids(tokenizer, model)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else min(self.stop_ids)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = next(
            (k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None
        )

    @classmethod
    def from_pretrained(
        cls,
        path_or_name: str,
        *,
        dtype: Any = "float32",
        device: Any = None,
        batch_size: int | None = None,
        **model_kwargs: Any,
    ) -> HFPolicy:
        """Load model and tokenizer from a local directory (or a cached hub name).

        Args:
            path_or_name: what ``AutoModelForCausalLM.from_pretrained`` accepts.
            dtype: parameter dtype: a ``torch.dtype``, its name, or ``"auto"``
                (the checkpoint's). Default float32, which the trainer wants.
            device: default ``"cuda"`` when available, else ``"cpu"``.
            batch_size: see the class docstring.
            **model_kwargs: passed on to ``AutoModelForCausalLM.from_pretrained``.
        """
        torch = _torch()
        try:
            import transformers
        except ImportError as e:
            raise DependencyMissing("transformers", "hf", "the transformers policy") from e
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        model_kwargs[dtype_kw] = _resolve_dtype(torch, dtype)
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path_or_name)
            model = transformers.AutoModelForCausalLM.from_pretrained(path_or_name, **model_kwargs)
        except OSError as e:
            raise PolicyError(
                f"could not load a model and tokenizer from {path_or_name!r}: {e}. Pass a "
                "local directory written by save_pretrained (agentgym.policies.models."
                "default_model_path() gives the embedded default model)"
            ) from e
        model.eval()
        return cls(model, tokenizer, device=device, batch_size=batch_size)

    # ---------------------------------------------------------------- generate
    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        """Sample one continuation per request; see the module docstring.

        A request whose cap (``min(params.max_new_tokens, request.max_new_tokens)``)
        is 0 gets an empty generation with ``finish_reason="length"``.
        """
        torch = _torch()
        check_prompts(requests)
        caps = [request_cap(r, params) for r in requests]
        out = [Generation([], [], "length") for _ in requests]
        todo = [i for i, c in enumerate(caps) if c > 0]
        if not todo:
            return out
        gen = None
        if params.seed is not None:
            gen = torch.Generator(device=self.device).manual_seed(int(params.seed))
        stop = self.stop_ids | frozenset(int(t) for t in params.stop_token_ids)
        streams = _streams(torch, requests, gen)
        size = self.batch_size or len(todo)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(todo), size):
                    chunk = todo[start : start + size]
                    gens = self._generate_batch(
                        [requests[i].prompt_ids for i in chunk],
                        [caps[i] for i in chunk],
                        params,
                        stop,
                        gen,
                        [streams[i] for i in chunk] if streams else None,
                    )
                    for i, g in zip(chunk, gens, strict=True):
                        out[i] = g
        finally:
            self.model.train(was_training)
        return out

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:  # transformers < 4.56
            return DynamicCache()

    def _forward(self, ids: Any, mask: Any, pos: Any, cache: Any) -> Any:
        """Last-position logits ``[B, V]`` (float32); extends ``cache`` in place."""
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": pos,
            "use_cache": True,
            self._cache_kw: cache,
        }
        if self._keep_kw is not None:
            kwargs[self._keep_kw] = 1
        return self.model(**kwargs).logits[:, -1, :].float()

    def _generate_batch(
        self,
        prompts: Sequence[Sequence[int]],
        caps: Sequence[int],
        params: SamplingParams,
        stop: frozenset[int],
        gen: Any,
        streams: list[random.Random] | None = None,
    ) -> list[Generation]:
        """Decode one left-padded batch until every row stopped or hit its cap."""
        torch = _torch()
        n, width = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for b, p in enumerate(prompts):
            ids[b, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
            mask[b, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count from the first real token
        cache = self._new_cache()
        logits = self._forward(ids, mask, pos, cache)
        next_pos = pos[:, -1] + 1
        rows = list(range(n))  # batch position -> index in this chunk
        tokens: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        finish = ["length"] * n
        while True:
            u = None
            if streams is not None and params.temperature > 0:
                u = torch.tensor([streams[r].random() for r in rows], dtype=torch.float64)
            tok, lp = _sample(torch, logits, params, gen, u)
            keep = []
            for j, (t, x) in enumerate(zip(tok.tolist(), lp.tolist(), strict=True)):  # sync
                r = rows[j]
                tokens[r].append(t)
                logprobs[r].append(x)
                if t in stop:
                    finish[r] = "stop"
                elif len(tokens[r]) < caps[r]:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(rows):  # drop finished rows: they stop costing compute
                idx = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(idx)
                mask, next_pos, tok = mask[idx], next_pos[idx], tok[idx]
                rows = [rows[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            logits = self._forward(tok[:, None], mask, next_pos[:, None], cache)
            next_pos = next_pos + 1
        return [
            Generation(token_ids=tokens[r], logprobs=logprobs[r], finish_reason=finish[r])  # type: ignore[arg-type]
            for r in range(n)
        ]


def _streams(torch: Any, requests: Sequence[Request], gen: Any) -> list[random.Random] | None:
    """One uniform stream per request when any request carries its own seed, else None."""
    if all(r.seed is None for r in requests):
        return None
    return [
        random.Random(
            r.seed if r.seed is not None else int(torch.randint(2**62, (1,), generator=gen))
        )
        for r in requests
    ]


def _pick(torch: Any, probs: Any, gen: Any, u: Any) -> Any:
    """Draw one index per row of ``probs [B, V]``: multinomial, or inverse CDF at ``u [B]``."""
    if u is None:
        return torch.multinomial(probs, 1, generator=gen).squeeze(-1)
    cdf = probs.double().cumsum(dim=-1)
    target = (u.to(cdf.device) * cdf[:, -1])[:, None]
    # first index whose cumulative mass exceeds the target: never a zero-mass token
    return torch.searchsorted(cdf, target, right=True).clamp(max=probs.shape[-1] - 1).squeeze(-1)


def _sample(
    torch: Any, logits: Any, params: SamplingParams, gen: Any, u: Any = None
) -> tuple[Any, Any]:
    """Pick one token per row of ``logits [B, V]``; return ids ``[B]`` and logprobs ``[B]``.

    ``u [B]``: uniforms in [0, 1) of per-request streams (inverse-CDF draws); None
    draws with ``torch.multinomial`` from ``gen``. The logprob is taken under the full
    tempered distribution, not the nucleus.
    """
    if params.temperature == 0:
        logp = torch.log_softmax(logits, dim=-1)
        tok = logits.argmax(dim=-1)
    else:
        logp = torch.log_softmax(logits / params.temperature, dim=-1)
        probs = logp.exp()
        if params.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
            # keep a token while the mass ranked above it is still below top_p
            outside = (sorted_p.cumsum(dim=-1) - sorted_p) >= params.top_p
            sorted_p = sorted_p.masked_fill(outside, 0.0)
            tok = order.gather(-1, _pick(torch, sorted_p, gen, u)[:, None]).squeeze(-1)
        else:
            tok = _pick(torch, probs, gen, u)
    return tok, logp.gather(-1, tok[:, None]).squeeze(-1)
