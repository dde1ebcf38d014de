import pytest

from agentgym.rollout.render import ChatRenderer, EpisodeTokens, check_drift

SYSTEM = {"role": "system", "content": "Echo game."}


def _user(text):
    return {"role": "user", "content": text}


def test_closing_tokens_and_prefix_stability(tiny_tokenizer):
    r = ChatRenderer(tiny_tokenizer)
    assert r.incremental
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert r.end_of_turn_ids[0] == im_end
    assert r.stop_token_id == im_end
    # the template's closing tokens = what follows the content of an assistant turn
    text = tiny_tokenizer.decode(r.end_of_turn_ids)
    assert text.startswith("<|im_end|>")


def test_ledger_matches_full_rerender_and_masks_only_sampled(tiny_tokenizer):
    tok = tiny_tokenizer
    r = ChatRenderer(tok)
    ep = EpisodeTokens(r)
    ep.start([SYSTEM, _user("Say apple.")])
    eot = r.stop_token_id
    for word, reply in [("plum", "No. Say apple."), ("apple", None)]:
        ids = tok(word, add_special_tokens=False)["input_ids"] + [eot]
        ep.add_turn(ids, [-0.5] * len(ids), "stop", word)
        if reply:
            ep.add_observation([_user(reply)])
    ep.trim_trailing_prompt()
    led = ep.ledger
    led.validate()
    report = check_drift(r, led, ep.messages)
    assert report.ok, report.detail
    # exactly the sampled ids are trainable, with their logprobs
    sampled = [t for t, m in zip(led.input_ids, led.loss_mask, strict=True) if m]
    assert tok.decode(sampled) == "plum<|im_end|>apple<|im_end|>"
    assert all(
        lp == (-0.5 if m else 0.0) for lp, m in zip(led.logprobs, led.loss_mask, strict=True)
    )
    s0, e0 = led.turn_spans[0]
    assert tok.decode(led.input_ids[s0:e0]) == "plum<|im_end|>"


def test_drift_check_reports_first_differing_position(tiny_tokenizer):
    tok = tiny_tokenizer
    r = ChatRenderer(tok)
    ep = EpisodeTokens(r)
    ep.start([SYSTEM, _user("Say apple.")])
    start = len(ep.ledger)
    # "apple" sampled letter by letter: same text, other ids than a re-tokenisation gives
    ids = [tok.convert_tokens_to_ids(c) for c in "apple"]
    assert tok.decode(ids) == "apple" and len(ids) == 5
    ep.add_turn(ids + [r.stop_token_id], [0.0] * 6, "stop", "apple")
    ep.trim_trailing_prompt()
    report = check_drift(r, ep.ledger, ep.messages)
    assert not report.ok
    assert report.position == start
    assert "differ at token" in report.detail


def test_length_cut_turn_gets_the_whole_closing_as_prompt_tokens(tiny_tokenizer):
    r = ChatRenderer(tiny_tokenizer)
    ep = EpisodeTokens(r)
    ep.start([_user("Say apple.")])
    ids = tiny_tokenizer("plum plum", add_special_tokens=False)["input_ids"]
    ep.add_turn(ids, [0.0] * len(ids), "length", "plum plum")
    n = len(ep.ledger)
    assert ep.ledger.input_ids[n - len(r.end_of_turn_ids) :] == r.end_of_turn_ids
    assert ep.ledger.loss_mask[n - len(r.end_of_turn_ids) :] == [0] * len(r.end_of_turn_ids)
    assert check_drift(r, ep.ledger, ep.messages).ok


def test_history_rewriting_template_falls_back_to_one_sample_per_turn(tiny_tokenizer):
    tok = tiny_tokenizer
    # Drops the content of every assistant turn but the last, like templates that
    # strip earlier <think> blocks.
    tok2 = type(tok).from_pretrained(tok.name_or_path)
    tok2.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}(hidden){% else %}{{ m['content'] }}"
        "{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    r = ChatRenderer(tok2)
    assert not r.incremental
    ep = EpisodeTokens(r)
    ep.start([_user("Say apple.")])
    for word in ["plum", "fig"]:
        ids = tok2(word, add_special_tokens=False)["input_ids"] + [r.stop_token_id]
        ep.add_turn(ids, [0.0] * len(ids), "stop", word)
        ep.add_observation([_user("again")])
    assert ep.per_turn is not None and len(ep.per_turn) == 2
    second = ep.per_turn[1]
    prompt = tok2.decode(
        [t for t, m in zip(second.input_ids, second.loss_mask, strict=True) if not m]
    )
    assert "(hidden)" in prompt  # the prompt is the template's own rendering of history


def test_template_without_chat_template_is_a_clear_error(tiny_tokenizer):
    from agentgym.errors import TemplateError

    tok = type(tiny_tokenizer).from_pretrained(tiny_tokenizer.name_or_path)
    tok.chat_template = None
    with pytest.raises(TemplateError, match="no chat_template"):
        ChatRenderer(tok)


@pytest.mark.parametrize(
    "new",
    [
        [{"role": "user", "content": "No. Say plum."}],
        [{"role": "user", "content": "  leading and trailing spaces  \n"}],
        [{"role": "tool", "content": "résultat: ½ ✓"}, {"role": "user", "content": "and?"}],
        [{"role": "user", "content": "<|im_end|> inside"}],
    ],
)
def test_shortcuts_give_the_plain_ids(tiny_tokenizer, new):
    """Memo, text-suffix tokenization and the Rust encoder never change an id."""
    from agentgym.policies.base import render_chat
    from agentgym.rollout.render import _BASE

    r = ChatRenderer(tiny_tokenizer)
    assert r._suffix_head == "<|im_start|>"  # the shortcuts are on for this tokenizer
    base = render_chat(tiny_tokenizer, _BASE)
    plain = render_chat(tiny_tokenizer, _BASE + new, add_generation_prompt=True)[len(base) :]
    first = r.continuation_ids(new)
    assert first == plain
    first.append(-1)  # callers may mutate what they get: the memo keeps its own copy
    assert r.continuation_ids(new) == plain
    msgs = [{"role": "system", "content": "S"}, *new]
    want = render_chat(tiny_tokenizer, msgs, add_generation_prompt=True)
    assert r.render(msgs, add_generation_prompt=True) == want
