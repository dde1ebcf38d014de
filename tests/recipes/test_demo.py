"""The demo recipe: a short run end to end, on a tiny model and on the real default model."""

from __future__ import annotations

import json

import pytest

from agentgym.policies.hf import HFPolicy
from agentgym.policies.tinymodels import build_tiny_chat_model
from agentgym.recipes.demo import DemoConfig, run_demo, summary_line
from agentgym.recipes.learning import _env_corpus, preset


def _check_figures(figures, cfg, out, printed, model_name):
    tasks = cfg.eval_tasks
    assert figures["tasks"] == tasks
    for phase in ("base", "sft", "grpo"):
        rate = figures[phase]
        assert 0.0 <= rate <= 1.0
        assert abs(rate * tasks - round(rate * tasks)) < 1e-9  # a fraction of the tasks
        episodes = [json.loads(line) for line in (out / f"eval_{phase}.jsonl").open()]
        assert len(episodes) == tasks
        assert sum(e["success"] for e in episodes) == round(rate * tasks)
    assert figures["demonstrations"] == cfg.sft_demos  # the expert solves every task
    demos = (out / "demonstrations.jsonl").read_text().splitlines()
    assert len(demos) == cfg.sft_demos
    steps = [json.loads(line) for line in (out / "grpo" / "metrics.jsonl").open()]
    assert [int(s["step"]) for s in steps] == list(range(1, cfg.grpo_steps + 1))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == model_name
    assert {k: summary[k] for k in figures} == figures
    last = printed.strip().splitlines()[-1]
    assert last.startswith(summary_line(model_name, cfg.env_id, figures))


def test_demo_recipe_on_a_tiny_model_reports_consistent_figures(tmp_path, capsys):
    texts, pieces, _ = _env_corpus(preset("tools"), range(200, 216))
    path = build_tiny_chat_model(tmp_path / "tiny", words=pieces, corpus=texts)
    policy = HFPolicy.from_pretrained(str(path), device="cpu")
    cfg = DemoConfig(
        model=str(path),
        eval_tasks=4,
        sft_demos=8,
        sft_epochs=10,
        sft_lr=3e-3,
        grpo_steps=2,
        tasks_per_step=2,
        group_size=2,
        grpo_lr=1e-3,
        lora_rank=4,
        max_new_tokens=24,
        out_dir=str(tmp_path / "demo"),
    )
    figures = run_demo(cfg, policy=policy, model_name="tiny")
    printed = capsys.readouterr().out
    _check_figures(figures, cfg, tmp_path / "demo", printed, "tiny")
    assert figures["sft_loss_last"] < figures["sft_loss_first"]
    assert figures["base"] <= 0.25  # an untrained model does not find the codes


def test_demo_recipe_wires_up_the_default_model(tmp_path, capsys):
    """One SFT step and one GRPO step of SmolLM2-135M-Instruct on two tasks."""
    from agentgym.errors import DependencyMissing
    from agentgym.policies.models import default_model_path

    try:
        default_model_path()
    except DependencyMissing as e:
        pytest.skip(str(e))
    cfg = DemoConfig(
        eval_tasks=2,
        sft_demos=2,
        sft_epochs=1,
        grpo_steps=1,
        tasks_per_step=1,
        group_size=2,
        max_new_tokens=6,
        out_dir=str(tmp_path / "demo"),
    )
    figures = run_demo(cfg)
    printed = capsys.readouterr().out
    _check_figures(figures, cfg, tmp_path / "demo", printed, "SmolLM2-135M-Instruct")
    assert figures["base"] == 0.0  # it answers in prose (and 6 tokens cannot hold a call)
