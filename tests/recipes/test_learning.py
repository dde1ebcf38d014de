"""agentgym.recipes.learning: the tiny-model GRPO recipe as a library call (the full-size run
and its before/after assertions are in tests/bench/test_learning.py)."""

from __future__ import annotations

import json

import pytest

from agentgym.errors import ConfigError
from agentgym.recipes.learning import LearningConfig, run

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
    assert set(res) == {
        "success_before",
        "success_after",
        "steps",
        "seconds",
        "train_success_last",
    }
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


def test_env_without_action_words_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="toy-text env"):
        run(LearningConfig(env_id="agentgym/Wordle-v0", env_kwargs={}, out_dir=str(tmp_path)))
