"""SFT and rejection-sampling fine-tuning: real tiny models, real envs, real trainer."""

from __future__ import annotations

import json

import pytest

from agentgym.errors import ConfigError
from agentgym.policies.hf import HFPolicy
from agentgym.policies.scripted import RandomChoicePolicy
from agentgym.policies.tinymodels import build_tiny_chat_model
from agentgym.recipes.experts import EXPERTS, expert_policy
from agentgym.recipes.learning import _env_corpus, preset
from agentgym.recipes.sft import (
    SFTConfig,
    demonstrations,
    rejection_sample,
    run_sft,
    sft_update,
)
from agentgym.rollout import CollectConfig, evaluate

ENV = "agentgym/Lookup-v0"
COLLECT = CollectConfig(env_kwargs={"prompt": "short"}, max_turns=2, progress=False)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    texts, pieces, _ = _env_corpus(preset("tools"), range(200, 216))
    return build_tiny_chat_model(tmp_path_factory.mktemp("m") / "tiny", words=pieces, corpus=texts)


def test_experts_solve_their_envs():
    from agentgym.policies.tinymodels import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    for env_id in EXPERTS.available():
        kwargs = {"random_map_size": 4} if "FrozenLake" in env_id else {}
        cfg = CollectConfig(env_kwargs=kwargs, progress=False)
        trajs = demonstrations(
            expert_policy(env_id, tok), env_id, range(12), cfg, only_success=False
        )
        assert all(t.success for t in trajs), env_id
    with pytest.raises(ConfigError, match="did you mean|unknown"):
        expert_policy("agentgym/Wordle-v0", tok)


def test_sft_on_expert_demonstrations_teaches_the_tool_to_a_tiny_model(tiny_path):
    policy = HFPolicy.from_pretrained(str(tiny_path), device="cpu")
    held_out = range(1_000_000, 1_000_016)
    before = evaluate(policy, ENV, held_out, COLLECT)["success_rate"]
    demos = demonstrations(expert_policy(ENV, policy.tokenizer), ENV, range(48), COLLECT)
    assert len(demos) == 48
    losses = sft_update(policy.model, demos, epochs=40, lr=3e-3, micro_batch_size=64)
    after = evaluate(policy, ENV, held_out, COLLECT)["success_rate"]
    assert losses[-1] < 0.2 * losses[0]
    assert before <= 0.2 and after >= 0.8, (before, after)


def test_rejection_sampling_keeps_only_successes_up_to_per_task(tiny_path):
    policy = HFPolicy.from_pretrained(str(tiny_path), device="cpu")
    from agentgym.envs.lookup import Lookup

    # A random policy over well-formed actions succeeds now and then.
    guesser = RandomChoicePolicy(Lookup(prompt="short").valid_actions(), policy.tokenizer, seed=0)
    kept = rejection_sample(guesser, ENV, range(40), COLLECT, samples=8, per_task=1)
    assert kept and all(t.success for t in kept)
    assert len({t.group_id for t in kept}) == len(kept)  # at most one per task
    with pytest.raises(ConfigError, match="no demonstrations"):
        sft_update(policy.model, [])


def test_run_sft_writes_demonstrations_metrics_and_model(tiny_path, tmp_path):
    policy = HFPolicy.from_pretrained(str(tiny_path), device="cpu")
    cfg = SFTConfig(
        env_id=ENV, tasks=8, epochs=2, lr=1e-3, eval_seeds=4, collect=COLLECT, out_dir=str(tmp_path)
    )
    figures = run_sft(cfg, policy=policy)
    assert figures["demonstrations"] == 8 and figures["loss_last"] < figures["loss_first"]
    assert {"success_before", "success_after"} <= set(figures)
    assert len((tmp_path / "demonstrations.jsonl").read_text().splitlines()) == 8
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["tasks"] == 8
    assert (tmp_path / "model" / "config.json").exists()


def test_sft_command_is_registered_with_its_flags():
    from agentgym.cli import COMMANDS, parse_command

    assert "sft" in COMMANDS
    name, cfg = parse_command(["sft", "--source", "self", "--samples", "8", "--tasks", "4"])
    assert name == "sft"
    assert (cfg.source, cfg.samples, cfg.tasks) == ("self", 8, 4)
