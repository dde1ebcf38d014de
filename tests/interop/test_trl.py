"""An agentgym env as TRL's environment_factory: the adapter, then a real GRPOTrainer step."""

from __future__ import annotations

import pytest

import agentgym
from agentgym.errors import ConfigError
from agentgym.interop import TRLEnvironment, trl_dataset, trl_environment_factory


def test_adapter_plays_the_env_like_agentgym_does():
    env = trl_environment_factory("agentgym/Wordle-v0", max_turns=2)()
    ref = agentgym.make("agentgym/Wordle-v0", max_turns=2)
    obs, _ = ref.reset(seed=4)
    assert env.reset(seed=4, prompt=[{"role": "user", "content": "x"}]) == "\n\n".join(
        m["content"] for m in obs
    )
    total = 0.0
    for guess in ("crane", "slate"):
        reply = env.act(guess)
        o, r, *_ = ref.step(guess)
        total += r
        assert reply.startswith(o[0]["content"])
    assert reply.endswith("(The episode is over.)")
    assert env.act("again") == "The episode is over; no more actions are accepted."
    assert env.get_reward() == pytest.approx(total)
    outcome = TRLEnvironment("agentgym/Wordle-v0", reward="outcome")
    outcome.reset(seed=4)
    outcome.act("crane")
    assert outcome.get_reward() == 0.0
    with pytest.raises(ConfigError, match="reward must be one of"):
        TRLEnvironment("agentgym/Wordle-v0", reward="sum")


def test_only_reset_act_and_get_reward_are_public():
    # TRL offers every other public method to the model as a tool.
    public = {n for n in dir(TRLEnvironment) if not n.startswith("_")}
    assert public == {"reset", "act", "get_reward"}


def test_tool_schema_as_trl_builds_it():
    get_json_schema = pytest.importorskip("transformers.utils").get_json_schema
    schema = get_json_schema(TRLEnvironment("agentgym/Wordle-v0").act)
    assert schema["function"]["name"] == "act"
    assert schema["function"]["parameters"]["required"] == ["action"]


@pytest.mark.slow
def test_grpo_trainer_step_with_environment_factory(tiny_model_dir, tmp_path, monkeypatch):
    trl = pytest.importorskip("trl")
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = qwen2_5_chat_template  # TRL needs a template that renders tool calls
    tok.padding_side = "left"
    tok.pad_token = tok.pad_token or tok.eos_token
    seeds_seen = []

    class Recording(TRLEnvironment):
        def reset(self, seed=None, options=None, **row):
            seeds_seen.append(seed)
            return super().reset(seed=seed, options=options)

    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )
    trainer = trl.GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=args,
        processing_class=tok,
        train_dataset=trl_dataset("agentgym/Wordle-v0", range(4)),
        environment_factory=lambda: Recording("agentgym/Wordle-v0"),
    )
    trainer.train()
    # One group of 2 rollouts, both reset on the same dataset row's seed; the env's
    # get_reward was TRL's reward source.
    assert len(seeds_seen) == 2 and len(set(seeds_seen)) == 1 and seeds_seen[0] in range(4)
    logged = trainer.state.log_history[0]
    assert "rewards/Recording/mean" in logged
