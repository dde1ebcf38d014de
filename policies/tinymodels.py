"""Tiny chat models built locally in a second: for tests, examples and benchmarks.

:func:`build_tiny_chat_model` trains a byte-level BPE tokenizer on a few
strings, wraps it with a ChatML chat template, builds a randomly initialised
Llama (or GPT-2) of a few hundred thousand parameters, and saves both with
``save_pretrained`` so that ``AutoTokenizer`` / ``AutoModelForCausalLM`` (and
:meth:`agentgym.policies.hf.HFPolicy.from_pretrained`) load them like any hub
model. Nothing is downloaded.

Determinism: the same arguments give byte-identical files. Weights are drawn
from a local :class:`torch.Generator` seeded with ``seed``; the model is
constructed inside :func:`torch.random.fork_rng`, so the process-wide torch RNG
is left as it was (transformers' own initialisation draws from it, and is then
overwritten). ``fork_rng`` is not thread-safe: do not build a model while
another thread samples from the global torch RNG.

Example:
    >>> from agentgym.policies.tinymodels import build_tiny_chat_model
    >>> path = build_tiny_chat_model("/tmp/tiny", words=["left", "right"], corpus=["Go left."])
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained(path)
    >>> len(tok("left", add_special_tokens=False)["input_ids"])
    1
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from agentgym.errors import ConfigError, DependencyMissing

__all__ = ["CHATML_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_chat_model", "build_tiny_tokenizer"]

#: ``<|im_start|>`` opens a message, ``<|im_end|>`` ends it (the end-of-turn and
#: eos token), ``<|endoftext|>`` pads.
SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")

#: ChatML: each message is ``<|im_start|>{role}\n{content}<|im_end|>\n``; the
#: generation prompt is ``<|im_start|>assistant\n``. Prefix-stable: rendering
#: ``msgs + [assistant]`` starts with rendering ``msgs`` plus the generation prompt.
#: ``content`` may be a string, None (rendered empty) or a list of ``{"text": ...}`` parts.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set content = message['content'] -%}"
    "{%- if content is none -%}{%- set content = '' -%}"
    "{%- elif content is not string -%}"
    "{%- set content = content | map(attribute='text') | join('') -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' + content + '<|im_end|>' + '\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)

_ROLE_TEXT = ("system\n", "user\n", "assistant\n", "tool\n")
_DEFAULT_VOCAB = 1024
_ARCHS = ("llama", "gpt2")


def _imports() -> tuple[Any, Any, Any]:
    try:
        import tokenizers
        import torch
        import transformers
    except ImportError as e:
        raise DependencyMissing(e.name or "transformers", "hf", "building tiny models") from e
    return tokenizers, torch, transformers


def _training_text(corpus: Iterable[str], words: Sequence[str]) -> Iterator[str]:
    yield from _ROLE_TEXT
    yield from corpus
    yield from words


def build_tiny_tokenizer(
    words: Sequence[str] = (), corpus: Iterable[str] = (), vocab_size: int | None = None
) -> Any:
    """Train a lossless byte-level BPE tokenizer with a ChatML template.

    Args:
        words: strings that must each encode to exactly one token (added tokens).
        corpus: training text for the BPE merges.
        vocab_size: BPE vocabulary size before ``words`` are added (at least 259:
            256 bytes and 3 special tokens); training stops early on a small corpus.
            Default 1024.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with ``eos_token="<|im_end|>"``,
        ``pad_token="<|endoftext|>"`` and :data:`CHATML_TEMPLATE`.
    """
    tokenizers, _, transformers = _imports()
    from tokenizers import decoders, models, pre_tokenizers, trainers

    size = _DEFAULT_VOCAB if vocab_size is None else int(vocab_size)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ConfigError(
            f"vocab_size must be at least {len(alphabet) + len(SPECIAL_TOKENS)} "
            f"(256 bytes + {len(SPECIAL_TOKENS)} special tokens), got {vocab_size}"
        )
    bad = [w for w in words if not isinstance(w, str) or not w]
    if bad:
        raise ConfigError(f"words must be non-empty strings, got {bad[:3]!r}")
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(corpus, words), trainer=trainer)
    # Added tokens are matched before pre-tokenisation, so each word is one token
    # wherever it occurs; sorted for a deterministic id order.
    tok.add_tokens([tokenizers.AddedToken(w, normalized=False) for w in sorted(set(words))])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _model_config(transformers: Any, arch: str, tok: Any, hidden: int, layers: int, heads: int):
    vocab = len(tok)
    eos, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id
    if arch == "llama":
        return transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=2048,
            tie_word_embeddings=True,
            bos_token_id=None,
            eos_token_id=eos,
            pad_token_id=pad,
        )
    return transformers.GPT2Config(
        vocab_size=vocab,
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        n_positions=2048,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=pad,
    )


def _init_weights(model: Any, torch: Any, seed: int, std: float) -> None:
    """Overwrite every parameter from a local generator: N(0, std) matrices, unit norms."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied weights are listed once
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)
            elif name.endswith("bias"):
                p.zero_()
            else:  # RMSNorm / LayerNorm scale
                p.fill_(1.0)


def build_tiny_chat_model(
    path: str | Path,
    *,
    words: Sequence[str] = (),
    corpus: Iterable[str] = (),
    arch: str = "llama",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    vocab_size: int | None = None,
    init_std: float | None = None,
) -> Path:
    """Build and save a tiny random chat model and its tokenizer at ``path``.

    Args:
        path: output directory (created; existing files are overwritten).
        words: strings that must each be a single token (e.g. an env's actions).
        corpus: text the BPE tokenizer is trained on (e.g. env observations).
        arch: ``"llama"`` (rotary positions) or ``"gpt2"`` (learned positions).
        hidden_size: model width; must be divisible by ``num_heads``.
        num_layers: transformer blocks.
        num_heads: attention heads.
        seed: seeds the weight initialisation (a local generator, see module doc).
        vocab_size: BPE vocabulary size before ``words`` (see :func:`build_tiny_tokenizer`).
        init_std: standard deviation of the weight matrices (default ``hidden_size ** -0.5``).
            The 0.02 of large-model configs is far too small at width 64: every attention
            and MLP path then starts near zero, the output barely depends on the prompt,
            and even supervised training on a state-dependent target stalls on the
            state-blind solution for dozens of steps.

    Returns:
        ``Path(path)``, loadable with ``AutoModelForCausalLM.from_pretrained``.
    """
    if arch not in _ARCHS:
        raise ConfigError(f"arch must be one of {_ARCHS}, got {arch!r}")
    if hidden_size < 1 or num_layers < 1 or num_heads < 1 or hidden_size % num_heads:
        raise ConfigError(
            f"need positive sizes with hidden_size divisible by num_heads, got "
            f"hidden_size={hidden_size}, num_layers={num_layers}, num_heads={num_heads}"
        )
    _, torch, transformers = _imports()
    tok = build_tiny_tokenizer(words, corpus, vocab_size)
    config = _model_config(transformers, arch, tok, hidden_size, num_layers, num_heads)
    cls = transformers.LlamaForCausalLM if arch == "llama" else transformers.GPT2LMHeadModel
    with torch.random.fork_rng(devices=[]):  # transformers' init must not move the global RNG
        model = cls(config)
    std = hidden_size**-0.5 if init_std is None else float(init_std)
    if not std > 0:
        raise ConfigError(f"init_std must be positive, got {init_std!r}")
    _init_weights(model, torch, seed, std)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
