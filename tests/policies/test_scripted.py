"""ScriptedPolicy and RandomChoicePolicy: text in, token protocol out."""

from __future__ import annotations

import pytest

from agentgym.errors import ConfigError, PolicyError
from agentgym.policies.base import Policy, Request, SamplingParams, end_of_turn_id
from agentgym.policies.scripted import RandomChoicePolicy, ScriptedPolicy

CONVO = [{"role": "system", "content": "Echo game."}, {"role": "user", "content": "Say plum."}]


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_text_is_encoded_and_closed_with_the_end_of_turn_token(tiny_tokenizer):
    seen = []

    def echo(messages):
        seen.append(messages)
        return messages[-1]["content"].removeprefix("Say ")

    policy = ScriptedPolicy(echo, tiny_tokenizer)
    assert isinstance(policy, Policy)
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_id(tiny_tokenizer) == im_end
    [gen] = policy.generate([Request(prompt_ids=[1, 2], messages=CONVO)], SamplingParams())
    assert seen == [CONVO]
    assert gen.token_ids == _ids(tiny_tokenizer, "plum.") + [im_end]
    assert gen.logprobs == [0.0] * len(gen.token_ids)
    assert gen.finish_reason == "stop"
    assert tiny_tokenizer.decode(gen.token_ids, skip_special_tokens=True) == "plum."


def test_caps_truncate_with_finish_length(tiny_tokenizer):
    text = "apple pear plum fig left right"
    n = len(_ids(tiny_tokenizer, text))
    policy = ScriptedPolicy(lambda _m: text, tiny_tokenizer)
    reqs = [Request([1], CONVO), Request([1], CONVO, max_new_tokens=3), Request([1], CONVO, 0)]
    full, capped, empty = policy.generate(reqs, SamplingParams(max_new_tokens=n + 1))
    assert len(full.token_ids) == n + 1 and full.finish_reason == "stop"
    assert capped.token_ids == full.token_ids[:3] and capped.finish_reason == "length"
    assert empty.token_ids == [] and empty.finish_reason == "length"
    [short] = policy.generate([Request([1], CONVO)], SamplingParams(max_new_tokens=n))
    assert short.token_ids == full.token_ids[:n] and short.finish_reason == "length"


def test_extra_stop_token_cuts_the_text(tiny_tokenizer):
    pear = _ids(tiny_tokenizer, "pear")[0]
    policy = ScriptedPolicy(lambda _m: "apple pear plum", tiny_tokenizer)
    [gen] = policy.generate([Request([1], CONVO)], SamplingParams(stop_token_ids=(pear,)))
    assert gen.token_ids[-1] == pear and gen.finish_reason == "stop"
    assert tiny_tokenizer.decode(gen.token_ids) == "apple pear"


def test_bad_function_and_bad_return(tiny_tokenizer):
    with pytest.raises(ConfigError):
        ScriptedPolicy("not callable", tiny_tokenizer)
    policy = ScriptedPolicy(lambda _m: 42, tiny_tokenizer)
    with pytest.raises(PolicyError, match="expected str"):
        policy.generate([Request([1], CONVO)], SamplingParams())


def test_random_choice_is_uniform_and_reproducible(tiny_tokenizer):
    choices = ["left", "right", "up", "down"]
    reqs = [Request([1], CONVO) for _ in range(400)]

    def texts(policy):
        gens = policy.generate(reqs, SamplingParams())
        return [tiny_tokenizer.decode(g.token_ids, skip_special_tokens=True) for g in gens]

    a = texts(RandomChoicePolicy(choices, tiny_tokenizer, seed=1))
    assert a == texts(RandomChoicePolicy(choices, tiny_tokenizer, seed=1))
    assert a != texts(RandomChoicePolicy(choices, tiny_tokenizer, seed=2))
    counts = {c: a.count(c) for c in choices}
    assert set(a) == set(choices)
    assert all(60 <= n <= 140 for n in counts.values()), counts  # ~100 each
    with pytest.raises(ConfigError):
        RandomChoicePolicy([], tiny_tokenizer)
