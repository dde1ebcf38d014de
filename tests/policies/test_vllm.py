"""VLLMPolicy on a real vLLM engine (vllm-cpu), with a tiny model built locally.

vLLM is not in the main test venv; ``make test`` runs this module again in its own
venv (``.venv-vllm``, see scripts/bootstrap_vllm.sh) with AGENTGYM_REQUIRE_VLLM=1, and
there a missing or broken vLLM fails instead of skipping.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("AGENTGYM_REQUIRE_VLLM") != "1":
    pytest.importorskip("vllm")

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from agentgym.policies.base import Request, SamplingParams  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from agentgym.policies.tinymodels import build_tiny_chat_model

    corpus = ["Echo game.", "Say apple.", "No. Say plum.", "You are a helpful assistant."]
    words = ("apple", "pear", "plum", "fig")
    # one head of 64: a head size vLLM's CPU attention has kernels for
    path = tmp_path_factory.mktemp("vllm") / "model"
    return build_tiny_chat_model(path, words=words, corpus=corpus, num_heads=1, seed=0)


@pytest.fixture(scope="module")
def policy(model_dir):
    from agentgym.policies.vllm import VLLMPolicy

    return VLLMPolicy.from_pretrained(
        str(model_dir), trainable=True, enforce_eager=True, max_model_len=512
    )


@pytest.fixture(scope="module")
def hf(model_dir):
    from agentgym.policies.hf import HFPolicy

    return HFPolicy.from_pretrained(str(model_dir), device="cpu")


def _prompt(tokenizer, text="Say apple."):
    msgs = [{"role": "system", "content": "Echo game."}, {"role": "user", "content": text}]
    rendered = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


def test_greedy_turns_equal_transformers(policy, hf):
    reqs = [Request(_prompt(hf.tokenizer, t)) for t in ("Say apple.", "No. Say plum.")]
    params = SamplingParams(temperature=0.0, max_new_tokens=8)
    for v, h in zip(policy.generate(reqs, params), hf.generate(reqs, params), strict=True):
        assert v.token_ids == h.token_ids and v.finish_reason == h.finish_reason


def test_sampled_logprobs_match_a_forward_pass(policy, hf):
    import torch

    prompt = _prompt(hf.tokenizer)
    gens = policy.generate([Request(prompt)] * 6, SamplingParams(temperature=0.8, seed=1))
    assert len({tuple(g.token_ids) for g in gens}) > 1  # the G copies are not one sample
    for g in gens:
        ids = torch.tensor([prompt + g.token_ids])
        with torch.no_grad():
            logits = hf.model(ids).logits[0, :-1] / 0.8
        logp = torch.log_softmax(logits, -1)[len(prompt) - 1 :]
        want = logp.gather(-1, ids[0, len(prompt) :, None]).squeeze(-1)
        np.testing.assert_allclose(g.logprobs, want.numpy(), atol=2e-3)


def test_stop_tokens_caps_and_seeds(policy, hf):
    prompt = _prompt(hf.tokenizer)
    [greedy] = policy.generate([Request(prompt)], SamplingParams(temperature=0.0, max_new_tokens=4))
    stop_at = greedy.token_ids[1]  # the second greedy token becomes a stop token
    params = SamplingParams(temperature=0.0, max_new_tokens=8, stop_token_ids=(stop_at,))
    stopped, capped, zero = policy.generate(
        [Request(prompt), Request(prompt, max_new_tokens=1), Request(prompt, max_new_tokens=0)],
        params,
    )
    assert stopped.token_ids == greedy.token_ids[:2] and stopped.finish_reason == "stop"
    assert len(capped.token_ids) == 1 and capped.finish_reason == "length"
    assert (zero.token_ids, zero.finish_reason) == ([], "length")
    from agentgym.policies.vllm import VLLMPolicy

    a = VLLMPolicy(policy.llm, policy.tokenizer)
    b = VLLMPolicy(policy.llm, policy.tokenizer)
    seeded = SamplingParams(temperature=1.0, max_new_tokens=6, seed=5)
    assert a.generate([Request(prompt)] * 3, seeded) == b.generate([Request(prompt)] * 3, seeded)


def test_load_weights_moves_the_engine_with_the_trained_copy(policy, hf):
    import torch

    prompt = _prompt(hf.tokenizer)
    target = hf.tokenizer.convert_tokens_to_ids("fig")
    params = SamplingParams(temperature=0.0, max_new_tokens=3)
    [before] = policy.generate([Request(prompt)], params)
    assert before.token_ids[0] != target
    with torch.no_grad():  # point the "fig" row of the output layer at the last hidden state
        out = policy.model(torch.tensor([prompt]), output_hidden_states=True)
        h = out.hidden_states[-1][0, -1]
        policy.model.get_output_embeddings().weight[target] = 50 * h / h.norm()
    policy.load_weights(policy.model)
    [after] = policy.generate([Request(prompt)], params)
    assert after.token_ids[0] == target


def test_collector_and_trainer_run_on_vllm(policy, tmp_path):
    import agentgym
    from agentgym.rl import TrainConfig, train
    from agentgym.rollout import CollectConfig

    agentgym.register("test/EchoVLLM-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)
    cfg = TrainConfig(
        env_id="test/EchoVLLM-v0",
        steps=2,
        tasks_per_step=2,
        collect=CollectConfig(group_size=2, sampling=SamplingParams(max_new_tokens=4)),
        lr=1e-3,
        out_dir=str(tmp_path),
        save_model=False,
    )
    result = train(cfg, policy=policy, progress=False)
    assert len(result.history) == 2
    assert all(
        r["rollout/infra_errors"] == 0 and r["rollout/env_errors"] == 0 for r in result.history
    )
    assert all(np.isfinite(r.get("loss/policy", 0.0)) for r in result.history)
