"""agentgym.recipes.learning: the tiny-model GRPO recipe as a library call (the full-size run
and its before/after assertions are in tests/bench/test_learning.py)."""

from __future__ import annotations

import json

import pytest

from agentgym.errors import ConfigError
from agentgym.recipes.learning import LearningConfig, preset, run, tool_use_stats

SMALL = dict(
    warm_episodes=4,
    warm_epochs=1,
    grpo_steps=2,
    tasks_per_step=2,
    group_size=2,
    eval_seeds=2,
    max_turns=3,
)


def test_small_run_reports_figures_writes_metrics_and_restores_the_global_rng(tmp_path):
    import torch

    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    res = run(LearningConfig(**SMALL, out_dir=str(tmp_path)), progress=False)
    assert torch.equal(torch.rand(3), expected)  # run() seeded torch inside fork_rng only
    assert {
        "success_before",
        "success_after",
        "steps",
        "seconds",
        "train_success_last",
        "steps_to_target",
        "curve",
        "tool_calls_per_episode",
        "invalid_rate",
        "before_invalid_rate",
    } <= set(res)
    assert res["steps"] == 2 and res["curve"][0][0] == 0 and res["curve"][-1][0] == 2
    assert 0.0 <= res["success_before"] <= 1.0 and 0.0 <= res["success_after"] <= 1.0
    rows = [json.loads(x) for x in (tmp_path / "grpo" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [1.0, 2.0]
    assert all(r["rollout/episodes"] == 4 for r in rows)
    assert (tmp_path / "model" / "config.json").exists()


def test_same_seed_same_figures(tmp_path):
    a = run(LearningConfig(**SMALL, out_dir=str(tmp_path / "a")), progress=False)
    b = run(LearningConfig(**SMALL, out_dir=str(tmp_path / "b")), progress=False)
    rows = lambda d: (tmp_path / d / "grpo" / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    keep = lambda r: {k: v for k, v in json.loads(r).items() if not k.startswith("perf/")}  # noqa: E731
    assert [keep(r) for r in rows("a")] == [keep(r) for r in rows("b")]
    assert (a["success_before"], a["success_after"]) == (b["success_before"], b["success_after"])


def test_tool_recipe_runs_on_lookup_and_counts_tool_use(tmp_path):
    cfg = preset("tools", **{**SMALL, "max_turns": 2}, eval_every=1, out_dir=str(tmp_path))
    res = run(cfg, progress=False)
    assert 0.0 <= res["invalid_rate"] <= 1.0
    assert [s for s, _ in res["curve"]] == [0, 1, 2]
    rows = [json.loads(x) for x in (tmp_path / "grpo" / "metrics.jsonl").open()]
    assert all("reward/found_per_turn" in r for r in rows if "rollout/episodes" in r)


def test_unknown_preset_and_stop_without_eval_are_config_errors():
    with pytest.raises(ConfigError, match="unknown learning recipe"):
        preset("tool")
    with pytest.raises(ConfigError, match="eval_every"):
        run(LearningConfig(stop_at=0.5))


def test_tool_use_stats_counts_calls_invalid_turns_and_tool_errors():
    from agentgym.envs.lookup import Lookup
    from agentgym.policies.scripted import ScriptedPolicy
    from agentgym.policies.tinymodels import build_tiny_tokenizer
    from agentgym.rollout import collect

    script = iter([Lookup.call("zulu"), "nonsense", Lookup.answer("K17")])
    policy = ScriptedPolicy(lambda _m: next(script), build_tiny_tokenizer())
    trajs = collect(policy, "agentgym/Lookup-v0", [0], progress=False)
    stats = tool_use_stats(trajs)
    assert stats == {
        "tool_calls_per_episode": 1.0,
        "invalid_rate": pytest.approx(1 / 3),
        "tool_error_rate": 1.0,
    }


def test_env_without_action_words_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="toy-text env"):
        run(LearningConfig(env_id="agentgym/Wordle-v0", env_kwargs={}, out_dir=str(tmp_path)))


def test_protocol_warm_start_imitates_call_then_answer_and_needs_an_env_that_has_one(tmp_path):
    import agentgym
    from agentgym.policies.tinymodels import build_tiny_tokenizer
    from agentgym.recipes.learning import _protocol_policy
    from agentgym.rollout import collect

    cfg = preset("tools", **SMALL, out_dir=str(tmp_path))
    tokenizer = build_tiny_tokenizer()
    trajs = collect(_protocol_policy(cfg, tokenizer), cfg.env_id, list(range(8)), progress=False)
    env = agentgym.make(cfg.env_id).unwrapped
    calls = {env.call(k) for k in env.items}
    answers = {env.answer(c) for c in env.codes}
    assert all(t.turns[0].action in calls and t.turns[1].action in answers for t in trajs)
    assert len({t.turns[0].action for t in trajs}) > 1  # random items, not the asked one
    with pytest.raises(ConfigError, match="protocol_actions"):
        _protocol_policy(LearningConfig(warm_start="protocol"), tokenizer)


@pytest.mark.parametrize("zero_variance", ["keep", "resample"])
def test_novel_held_out_maps_are_none_that_training_may_draw(zero_variance):
    import agentgym
    from agentgym.recipes.learning import _train_config, held_out_seeds, novel_held_out
    from agentgym.rl.loop import task_seeds

    cfg = preset("random-maps", grpo_steps=20, zero_variance=zero_variance)
    seeds = held_out_seeds(cfg)
    assert len(seeds) == cfg.eval_seeds == 32
    env = agentgym.make(cfg.env_id, **cfg.env_kwargs)

    def board(seed):
        env.reset(seed=seed)
        return tuple(env.unwrapped.board)

    tcfg = _train_config(cfg)
    rounds = 5 if zero_variance == "resample" else 1  # max_resample_rounds = 4
    trained = {
        board(s) for step in range(20) for r in range(rounds) for s in task_seeds(tcfg, step, r)
    }
    assert not trained & {board(s) for s in seeds}
    assert novel_held_out(cfg, 20, seeds) == [True] * 32
    # plain seeds 1,000,000+ do repeat common maps (few holes)
    plain = held_out_seeds(preset("random-maps", grpo_steps=20, held_out="seeds"))
    assert plain == list(range(1_000_000, 1_000_032))
    assert not all(novel_held_out(cfg, 20, plain))
    with pytest.raises(ConfigError, match="held_out='novel' needs a toy-text env"):
        held_out_seeds(preset("tools", held_out="novel"))
