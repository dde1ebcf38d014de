import json

import pytest

import agentgym
from agentgym.errors import ConfigError, InfraError
from agentgym.policies.base import Generation, SamplingParams
from agentgym.rollout.collector import CollectConfig, Collector, collect
from agentgym.rollout.render import ChatRenderer, check_drift
from agentgym.trajectory import read_jsonl

agentgym.register("test/Echo-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)
agentgym.register("test/Exploding-v0", entry_point="tests.core.fixture_envs:Exploding", max_turns=3)


def _echo_answer(messages):
    """Answers correctly only from the second turn on."""
    last = messages[-1]["content"]
    word = last.rstrip(".").split()[-1]
    n_assistant = sum(m["role"] == "assistant" for m in messages)
    return word if n_assistant >= 1 else "wrong"


@pytest.fixture()
def scripted(tiny_tokenizer):
    from agentgym.policies.scripted import ScriptedPolicy

    return ScriptedPolicy(_echo_answer, tiny_tokenizer)


def test_groups_share_a_task_and_trajectories_are_token_exact(scripted, tmp_path):
    out = tmp_path / "r.jsonl"
    trajs = collect(scripted, "test/Echo-v0", [5, 6], group_size=3, out=out, progress=False)
    assert len(trajs) == 6
    assert [t.sample_index for t in trajs] == [0, 1, 2, 0, 1, 2]
    groups = {}
    for t in trajs:
        groups.setdefault(t.group_id, []).append(t)
        assert t.status == "done" and t.success is True and t.outcome == 1.0
        assert [turn.reward for turn in t.turns] == pytest.approx([-0.1, 1.0])
        assert t.turns[0].reward_components == {"format": -0.1}
    assert len(groups) == 2
    for members in groups.values():
        assert len({json.dumps(m.initial_observation) for m in members}) == 1
    renderer = ChatRenderer(scripted.tokenizer)
    for t in trajs:
        t.ledger.validate()
        assert len(t.ledger.turn_spans) == 2
        for (s, e), turn in zip(t.ledger.turn_spans, t.turns, strict=True):
            text = scripted.tokenizer.decode(t.ledger.input_ids[s:e], skip_special_tokens=True)
            assert text == turn.action
        covered = t.messages[:-1] if t.messages[-1]["role"] != "assistant" else t.messages
        assert check_drift(renderer, t.ledger, covered).ok
    # The file holds them in the order they finished; the result in task-then-sample order.
    on_disk = read_jsonl(out)
    assert sorted(on_disk, key=lambda t: (t.metadata["task_index"], t.sample_index)) == trajs


def test_env_error_is_recorded_and_run_goes_on(scripted, tmp_path):
    out = tmp_path / "r.jsonl"
    wrong = collect(scripted, "test/Exploding-v0", [1, 2], out=out, progress=False)
    assert [t.status for t in wrong] == ["env_error", "env_error"]
    assert "env bug" in wrong[0].error
    assert len(wrong[0].turns) == 2  # the turn that crashed is kept with its action
    assert len(read_jsonl(out)) == 2


class _Boom:
    def __init__(self, tokenizer, exc):
        self.tokenizer, self.exc = tokenizer, exc

    def generate(self, requests, params):
        raise self.exc


def test_policy_failure_marks_infra_error_without_losing_anything(tiny_tokenizer, tmp_path):
    out = tmp_path / "r.jsonl"
    trajs = collect(
        _Boom(tiny_tokenizer, ConnectionError("server gone")),
        "test/Echo-v0",
        [0],
        group_size=2,
        out=out,
        progress=False,
    )
    assert [t.status for t in trajs] == ["infra_error", "infra_error"]
    assert "server gone" in trajs[0].error
    assert trajs[0].outcome is None
    assert len(read_jsonl(out)) == 2


class _InfraEnv(agentgym.AgentEnv):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.begin([agentgym.user("go")])

    def step(self, action):
        raise InfraError("sandbox daemon down")


def test_infrastructure_failure_in_env_is_infra_error(scripted):
    trajs = Collector(scripted, CollectConfig(progress=False)).collect(
        "test/Infra-v0", [0], env_factory=_InfraEnv
    )
    assert trajs[0].status == "infra_error" and "daemon down" in trajs[0].error


class _Chatty:
    """Always emits 10 tokens and never stops."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def generate(self, requests, params):
        word = self.tokenizer.convert_tokens_to_ids("plum")
        out = []
        for r in requests:
            n = min(10, r.max_new_tokens or params.max_new_tokens)
            out.append(Generation([word] * n, [-1.0] * n, "length"))
        return out


def test_token_budget_and_turn_limit(tiny_tokenizer):
    policy = _Chatty(tiny_tokenizer)
    first = len(
        ChatRenderer(tiny_tokenizer).initial_ids(
            [{"role": "system", "content": "Echo game."}, {"role": "user", "content": "Say fig."}]
        )
    )
    cfg = CollectConfig(max_episode_tokens=first + 15, max_turns=50, progress=False)
    t = Collector(policy, cfg).collect("test/Echo-v0", [0])[0]
    assert t.status == "truncated" and t.metadata["truncated_by"] == "token_budget"
    assert len(t.ledger) <= first + 15 + len(ChatRenderer(tiny_tokenizer).end_of_turn_ids)
    t2 = collect(policy, "test/Echo-v0", [0], progress=False)[0]
    assert t2.status == "truncated" and t2.metadata["truncated_by"] == "max_turns"
    assert len(t2.turns) == 2 and t2.outcome == 0.0 and t2.success is False
    assert all(turn.finish_reason == "length" for turn in t2.turns)


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="group_size"):
        CollectConfig(group_size=0)
    with pytest.raises(ConfigError, match="unknown collect option"):
        collect(None, "test/Echo-v0", [0], group_sise=2)
    with pytest.raises(ConfigError, match="temperature"):
        SamplingParams(temperature=-1)


def test_hf_policy_rollout_logprobs_match_the_trainer(tiny_policy):
    """TITO end to end: ids and logprobs recorded at sampling equal a fresh forward pass."""
    import torch

    from agentgym.rl import TrainConfig, Trainer

    cfg = CollectConfig(
        group_size=2,
        progress=False,
        sampling=SamplingParams(temperature=1.0, max_new_tokens=6, seed=3),
    )
    trajs = Collector(tiny_policy, cfg).collect("test/Echo-v0", [0, 1])
    trainer = Trainer(tiny_policy.model, TrainConfig())
    for t in trajs:
        assert t.status in ("done", "truncated")
        led = t.ledger
        ids = torch.tensor([led.input_ids])
        with torch.no_grad():
            lp = trainer.token_logprobs(ids, torch.ones_like(ids))[0]
        for i, m in enumerate(led.loss_mask):
            if m:
                assert lp[i - 1].item() == pytest.approx(led.logprobs[i], abs=2e-4)


@pytest.mark.parametrize("history", [0, 1])
def test_history_window_keeps_system_prompt_and_last_turns(tiny_tokenizer, history):
    from agentgym.policies.scripted import ScriptedPolicy
    from agentgym.rl.trainer import _samples

    seen: list[list[dict]] = []

    def left(messages):
        seen.append([dict(m) for m in messages])
        return "left"  # into the edge: the episode runs to the turn limit

    policy = ScriptedPolicy(left, tiny_tokenizer)
    (traj,) = collect(
        policy, "agentgym/FrozenLake-v0", [0], max_turns=4, history=history, progress=False
    )
    assert len(traj.turns) == 4 and traj.ledger is None
    full = traj.messages
    system, first = full[0], full[1]
    assert seen[0] == [system, first]  # turn 1: nothing to drop yet
    for k in range(1, 4):
        newest = traj.turns[k - 1].observation
        if history == 0:
            assert seen[k] == [system, *newest]
        else:
            before = traj.turns[k - 2].observation if k >= 2 else [first]
            assert seen[k] == [system, *before, {"role": "assistant", "content": "left"}, *newest]
    # One token-exact training sample per turn: the windowed prompt, then the sampled ids.
    renderer = ChatRenderer(tiny_tokenizer)
    assert len(traj.per_turn_ledgers) == 4
    for ctx, led in zip(seen, traj.per_turn_ledgers, strict=True):
        prompt = renderer.render(ctx, add_generation_prompt=True)
        assert led.input_ids[: len(prompt)] == prompt
        ((s, e),) = led.turn_spans
        assert s == len(prompt)
        assert tiny_tokenizer.decode(led.input_ids[s:e], skip_special_tokens=True) == "left"
    assert len(_samples(traj, [1.0, 0.5, 0.0, -1.0])) == 4


def test_history_must_be_non_negative():
    with pytest.raises(ConfigError, match="history"):
        CollectConfig(history=-1)
