"""Shared fixtures: a tiny chat model built locally (no download), once per worker."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_WORDS = ("left", "down", "right", "up", "apple", "pear", "plum", "fig")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Path of a tiny Llama chat model whose TINY_WORDS are single tokens."""
    from agentgym.policies.tinymodels import build_tiny_chat_model

    corpus = ["Echo game.", "Say apple.", "No. Say plum.", "You are a helpful assistant."]
    return build_tiny_chat_model(
        tmp_path_factory.mktemp("tiny") / "model", words=TINY_WORDS, corpus=corpus, seed=0
    )


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture()
def tiny_policy(tiny_model_dir):
    """A fresh HFPolicy on the tiny model (tests may train it)."""
    from agentgym.policies.hf import HFPolicy

    return HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
