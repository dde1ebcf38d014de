"""agentgym.policies.tinymodels: local tiny chat models that load like hub models."""

from __future__ import annotations

import hashlib

import pytest

from agentgym.errors import ConfigError
from tests.conftest import TINY_WORDS

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Go left."},
    {"role": "assistant", "content": "left"},
    {"role": "tool", "content": '{"ok": true}'},
    {"role": "user", "content": "Now?"},
]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builds_and_reloads_with_auto_classes(tiny_model_dir, tiny_tokenizer):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert isinstance(model, LlamaForCausalLM)
    assert model.config.vocab_size == len(tiny_tokenizer)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert tiny_tokenizer.eos_token == "<|im_end|>"
    assert tiny_tokenizer.pad_token == "<|endoftext|>"
    assert model.config.eos_token_id == tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    special = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"}
    assert special <= set(tiny_tokenizer.all_special_tokens)


def test_words_are_single_tokens_and_text_round_trips(tiny_tokenizer):
    tok = tiny_tokenizer
    for w in TINY_WORDS:
        assert len(tok(w, add_special_tokens=False)["input_ids"]) == 1, w
    for text in [
        "Héllo wörld 🙂\n\n  tabs\t and   spaces  ",
        "leftover appleplum, 42 + 7 = 49; {'a': [1, 2]}",
        "日本語のテキスト and Ελληνικά",
        "",
    ]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text


def test_chat_template_renders_chatml(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    expected = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in MESSAGES)
    assert text == expected + "<|im_start|>assistant\n"
    no_prompt = tiny_tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert no_prompt == expected


@pytest.mark.parametrize("n", range(1, len(MESSAGES) + 1))
def test_chat_template_is_prefix_stable(tiny_tokenizer, n):
    tok = tiny_tokenizer
    msgs = MESSAGES[:n]
    reply = {"role": "assistant", "content": "pear and fig"}
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template([*msgs, reply], tokenize=False)
    assert full.startswith(prompt)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tok(full, add_special_tokens=False)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids


def test_build_is_deterministic_and_leaves_global_rng_alone(tmp_path):
    import torch

    from agentgym.policies.tinymodels import build_tiny_chat_model

    state = torch.get_rng_state()
    kw = dict(words=["north", "south"], corpus=["Walk north, then south."], seed=3)
    a = build_tiny_chat_model(tmp_path / "a", **kw)
    b = build_tiny_chat_model(tmp_path / "b", **kw)
    c = build_tiny_chat_model(tmp_path / "c", **{**kw, "seed": 4})
    assert torch.equal(state, torch.get_rng_state())
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _digest(a / name) == _digest(b / name), name
    assert _digest(a / "model.safetensors") != _digest(c / "model.safetensors")
    assert _digest(a / "tokenizer.json") == _digest(c / "tokenizer.json")


def test_gpt2_arch_and_custom_sizes(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    from agentgym.policies.tinymodels import build_tiny_chat_model

    path = build_tiny_chat_model(
        tmp_path / "g", words=["zz-top"], arch="gpt2", hidden_size=32, num_layers=1, num_heads=2
    )
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert isinstance(model, GPT2LMHeadModel)
    assert (model.config.n_embd, model.config.n_layer, model.config.n_head) == (32, 1, 2)
    assert len(tok("zz-top", add_special_tokens=False)["input_ids"]) == 1
    assert model.config.vocab_size == len(tok)


def test_vocab_size_bounds_the_bpe_vocabulary(tmp_path):
    from transformers import AutoTokenizer

    from agentgym.policies.tinymodels import build_tiny_chat_model

    corpus = [f"token{i} word{i * 7} thing{i * 13}" for i in range(300)]
    small = AutoTokenizer.from_pretrained(
        build_tiny_chat_model(tmp_path / "s", corpus=corpus, vocab_size=300)
    )
    large = AutoTokenizer.from_pretrained(
        build_tiny_chat_model(tmp_path / "l", corpus=corpus, vocab_size=600)
    )
    assert len(small) <= 300 < len(large) <= 600


@pytest.mark.parametrize(
    "kwargs",
    [
        {"arch": "mamba"},
        {"hidden_size": 30, "num_heads": 4},
        {"num_layers": 0},
        {"vocab_size": 100},
        {"words": ["ok", ""]},
        {"init_std": 0.0},
    ],
)
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    from agentgym.policies.tinymodels import build_tiny_chat_model

    with pytest.raises(ConfigError):
        build_tiny_chat_model(tmp_path / "bad", **kwargs)


def test_init_std_defaults_to_inverse_sqrt_width(tmp_path):
    from transformers import AutoModelForCausalLM

    from agentgym.policies.tinymodels import build_tiny_chat_model

    def q_std(**kw):
        model = AutoModelForCausalLM.from_pretrained(build_tiny_chat_model(tmp_path / "m", **kw))
        return float(model.model.layers[0].self_attn.q_proj.weight.detach().std())

    assert q_std(hidden_size=64) == pytest.approx(64**-0.5, rel=0.05)
    assert q_std(hidden_size=32, num_heads=2) == pytest.approx(32**-0.5, rel=0.05)
    assert q_std(hidden_size=64, init_std=0.02) == pytest.approx(0.02, rel=0.05)


def test_default_init_makes_the_output_depend_on_the_prompt(tmp_path):
    """At 0.02 a width-64 model's next-token distribution barely moves with the prompt,
    which stalls learning anything state-dependent; the default init does not."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agentgym.policies.tinymodels import build_tiny_chat_model

    corpus = ["P F F\nF H F\nF F G", "S F F\nF P F\nF F G", "S F F\nF H F\nF F P"]

    def spread(**kw) -> float:
        path = build_tiny_chat_model(tmp_path / "m", words=TINY_WORDS, corpus=corpus, **kw)
        model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        probs = []
        for text in corpus:
            chat = [{"role": "user", "content": text}]
            prompt = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -1]
            probs.append(torch.softmax(logits, -1))
        return max(float((p - probs[0]).abs().sum()) for p in probs[1:])  # total variation x2

    small, default = spread(init_std=0.02), spread()
    assert small < 0.05 and default > 0.2, (small, default)  # measured 0.02 vs 0.33
