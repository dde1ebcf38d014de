"""HFPolicy: batched sampling with exact logprobs, stops, caps and seeds."""

from __future__ import annotations

import pytest
import torch

from agentgym.errors import ConfigError, PolicyError
from agentgym.policies.base import Policy, Request, SamplingParams, stop_token_ids
from agentgym.policies.hf import HFPolicy
from tests.policies.conftest import sharpen

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


def _reqs(prompts, caps=None):
    caps = caps or [None] * len(prompts)
    pairs = zip(prompts, caps, strict=True)
    return [Request(prompt_ids=list(p), max_new_tokens=c) for p, c in pairs]


def _reference_logprobs(model, prompt, tokens, temperature):
    """log_softmax(logits / T) of ``tokens`` from one unpadded forward pass."""
    ids = torch.tensor([list(prompt) + list(tokens)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp.gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1).tolist()


def _check_stop_invariant(gens, stops, caps):
    for g, cap in zip(gens, caps, strict=True):
        assert len(g.token_ids) == len(g.logprobs) <= cap
        assert not any(t in stops for t in g.token_ids[:-1])
        if g.finish_reason == "stop":
            assert g.token_ids[-1] in stops
        else:
            assert g.finish_reason == "length" and len(g.token_ids) == cap
            assert g.token_ids[-1] not in stops


def test_is_a_policy_and_knows_its_end_of_turn_token(tiny_policy, tiny_tokenizer):
    assert isinstance(tiny_policy, Policy)
    assert tiny_tokenizer.convert_tokens_to_ids("<|im_end|>") in tiny_policy.stop_ids
    assert stop_token_ids(tiny_tokenizer) == {tiny_tokenizer.eos_token_id}
    assert str(tiny_policy.device) == "cpu"


def test_batched_greedy_equals_unbatched(sharp_policy, prompt_ids):
    batched = sharp_policy.generate(_reqs(prompt_ids), GREEDY)
    single = [sharp_policy.generate(_reqs([p]), GREEDY)[0] for p in prompt_ids]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert len({tuple(g.token_ids) for g in batched}) == len(prompt_ids)  # context matters
    for a, b in zip(batched, single, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    chunked = HFPolicy(sharp_policy.model, sharp_policy.tokenizer, batch_size=3)
    assert [g.token_ids for g in chunked.generate(_reqs(prompt_ids), GREEDY)] == [
        g.token_ids for g in single
    ]


def test_gpt2_left_padding(tmp_path):
    """GPT-2 has learned absolute positions: wrong position ids under left padding show."""
    from agentgym.policies.tinymodels import build_tiny_chat_model
    from agentgym.rollout.render import ChatRenderer
    from tests.policies.conftest import PROMPTS

    path = build_tiny_chat_model(tmp_path / "g", arch="gpt2", corpus=["Say apple."], seed=1)
    policy = HFPolicy.from_pretrained(str(path), device="cpu")
    sharpen(policy.model)
    prompts = [ChatRenderer(policy.tokenizer).initial_ids(m) for m in PROMPTS]
    batched = policy.generate(_reqs(prompts), GREEDY)
    single = [policy.generate(_reqs([p]), GREEDY)[0] for p in prompts]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 1.0), (0.7, 0.8), (0.0, 1.0)])
def test_logprobs_match_a_full_forward_pass(sharp_policy, prompt_ids, temperature, top_p):
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=10, seed=5)
    gens = sharp_policy.generate(_reqs(prompt_ids), params)
    ref_t = temperature if temperature > 0 else 1.0  # greedy: untempered distribution
    for p, g in zip(prompt_ids, gens, strict=True):
        ref = _reference_logprobs(sharp_policy.model, p, g.token_ids, ref_t)
        assert g.logprobs == pytest.approx(ref, abs=1e-4)


def test_logprobs_on_the_default_init_model(tiny_policy, prompt_ids):
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=0)
    gens = tiny_policy.generate(_reqs(prompt_ids), params)
    for p, g in zip(prompt_ids, gens, strict=True):
        ref = _reference_logprobs(tiny_policy.model, p, g.token_ids, 1.0)
        assert g.logprobs == pytest.approx(ref, abs=1e-4)


def test_tiny_top_p_is_greedy_but_logprobs_are_not_renormalised(sharp_policy, prompt_ids):
    nucleus = SamplingParams(temperature=0.8, top_p=1e-6, max_new_tokens=8, seed=0)
    gens = sharp_policy.generate(_reqs(prompt_ids), nucleus)
    greedy = sharp_policy.generate(
        _reqs(prompt_ids), SamplingParams(temperature=0, max_new_tokens=8)
    )
    assert [g.token_ids for g in gens] == [g.token_ids for g in greedy]
    for p, g in zip(prompt_ids, gens, strict=True):
        ref = _reference_logprobs(sharp_policy.model, p, g.token_ids, 0.8)
        assert g.logprobs == pytest.approx(ref, abs=1e-4)
        assert max(g.logprobs) < -1e-3  # the nucleus held one token, yet logprob != 0


def test_seeded_sampling_is_reproducible(sharp_policy, prompt_ids):
    params = SamplingParams(temperature=1.0, max_new_tokens=16, seed=123)
    reqs = _reqs(prompt_ids * 2)
    a = sharp_policy.generate(reqs, params)
    b = sharp_policy.generate(reqs, params)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.logprobs for g in a] == [g.logprobs for g in b]
    other = sharp_policy.generate(reqs, SamplingParams(temperature=1.0, max_new_tokens=16, seed=7))
    assert [g.token_ids for g in other] != [g.token_ids for g in a]
    # copies of one prompt in one call draw different samples
    assert a[0].token_ids != a[len(prompt_ids)].token_ids


def test_unseeded_sampling_follows_the_global_rng(sharp_policy, prompt_ids):
    params = SamplingParams(temperature=1.0, max_new_tokens=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        a = sharp_policy.generate(_reqs(prompt_ids), params)
        torch.manual_seed(0)
        b = sharp_policy.generate(_reqs(prompt_ids), params)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]


def test_stop_token_ids_end_the_turn_and_are_included(sharp_policy, prompt_ids):
    free = sharp_policy.generate(_reqs(prompt_ids), GREEDY)
    target = free[1].token_ids[5]
    cut = free[1].token_ids.index(target)
    params = SamplingParams(temperature=0.0, max_new_tokens=12, stop_token_ids=(target,))
    gens = sharp_policy.generate(_reqs(prompt_ids), params)
    assert gens[1].token_ids == free[1].token_ids[: cut + 1]
    assert gens[1].finish_reason == "stop"
    for f, g in zip(free, gens, strict=True):  # other rows are untouched by the early exit
        if target in f.token_ids:
            assert g.token_ids == f.token_ids[: f.token_ids.index(target) + 1]
        else:
            assert g.token_ids == f.token_ids and g.finish_reason == "length"
    _check_stop_invariant(gens, sharp_policy.stop_ids | {target}, [12] * len(gens))


def test_end_of_turn_token_stops_generation(tiny_model_dir, prompt_ids):
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    sharpen(policy.model)
    free = policy.generate(_reqs(prompt_ids), GREEDY)
    # Untie the output layer and make <|im_end|> score twice what the 4th greedy token
    # scores: the turn must now end with <|im_end|> at or before step 4.
    im_end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    model = policy.model
    head = model.lm_head.weight.detach().clone()
    x = free[0].token_ids[3]
    head[im_end] = 2.0 * head[x]
    model.lm_head.weight = torch.nn.Parameter(head)
    gen = policy.generate(_reqs(prompt_ids[:1]), GREEDY)[0]
    assert gen.finish_reason == "stop" and gen.token_ids[-1] == im_end
    assert len(gen.token_ids) <= 4
    assert gen.token_ids[:-1] == free[0].token_ids[: len(gen.token_ids) - 1]


def test_sampled_turns_obey_the_stop_invariant(tiny_policy, prompt_ids):
    params = SamplingParams(temperature=1.0, max_new_tokens=60, seed=2)
    caps = [60, 5, None, 1]
    gens = tiny_policy.generate(_reqs(prompt_ids, caps), params)
    _check_stop_invariant(gens, tiny_policy.stop_ids, [60, 5, 60, 1])


def test_max_new_tokens_and_per_request_caps(sharp_policy, prompt_ids):
    p = prompt_ids[1]
    params = SamplingParams(temperature=0.0, max_new_tokens=7)
    gens = sharp_policy.generate(_reqs([p, p, p, p], [None, 3, 0, 100]), params)
    assert [len(g.token_ids) for g in gens] == [7, 3, 0, 7]
    assert [g.finish_reason for g in gens] == ["length"] * 4
    assert gens[1].token_ids == gens[0].token_ids[:3]
    assert gens[2].token_ids == [] and gens[2].logprobs == []
    assert gens[3].token_ids == gens[0].token_ids


def test_finished_rows_leave_the_batch(sharp_policy, prompt_ids):
    sizes = []
    hook = sharp_policy.model.register_forward_pre_hook(
        lambda _m, _a, kw: sizes.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        params = SamplingParams(temperature=0.0, max_new_tokens=8)
        sharp_policy.generate(_reqs(prompt_ids[:2], [2, 8]), params)
    finally:
        hook.remove()
    assert sizes == [2, 2] + [1] * 6


def test_training_mode_restored_and_weights_untouched(tiny_model_dir, prompt_ids):
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    before = [p.detach().clone() for p in policy.model.parameters()]
    policy.model.train()
    policy.generate(_reqs(prompt_ids), SamplingParams(temperature=1.0, max_new_tokens=4, seed=0))
    assert policy.model.training
    assert all(torch.equal(a, b) for a, b in zip(before, policy.model.parameters(), strict=True))
    assert all(p.grad is None for p in policy.model.parameters())


def test_errors_are_clear(tiny_policy, tmp_path):
    assert tiny_policy.generate([], GREEDY) == []
    with pytest.raises(PolicyError, match="no prompt_ids"):
        tiny_policy.generate([Request(prompt_ids=[])], GREEDY)
    with pytest.raises(ConfigError, match="batch_size"):
        HFPolicy(tiny_policy.model, tiny_policy.tokenizer, batch_size=0)
    with pytest.raises(PolicyError, match="could not load"):
        HFPolicy.from_pretrained(str(tmp_path / "missing"), device="cpu")
    with pytest.raises(ConfigError, match="dtype"):
        HFPolicy.from_pretrained(str(tmp_path), dtype="float77")


def test_from_pretrained_dtype(tiny_model_dir, prompt_ids):
    policy = HFPolicy.from_pretrained(str(tiny_model_dir), dtype="bfloat16", device="cpu")
    assert next(policy.model.parameters()).dtype == torch.bfloat16
    params = SamplingParams(temperature=1.0, seed=0, max_new_tokens=4)
    [g] = policy.generate(_reqs(prompt_ids[:1]), params)
    assert len(g.token_ids) == len(g.logprobs) >= 1
    assert all(x <= 0.0 for x in g.logprobs)
