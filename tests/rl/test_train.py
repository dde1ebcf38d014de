import math

import pytest
import torch

import agentgym
from agentgym.errors import ConfigError
from agentgym.policies.base import SamplingParams
from agentgym.rl import TrainConfig, Trainer, train
from agentgym.rl.losses import policy_losses, ppo_clip
from agentgym.rollout.collector import CollectConfig, Collector

agentgym.register("test/Echo-v0", entry_point="tests.core.fixture_envs:Echo", max_turns=2)


def test_ppo_clip_by_hand():
    cfg = TrainConfig(clip_low=0.2, clip_high=0.2)
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.0, 1.5, 0.5]])).requires_grad_()
    adv = torch.tensor([[2.0, 2.0, -1.0]])
    mask = torch.ones(1, 3)
    loss, m = ppo_clip(logp, old, adv, mask, cfg)
    # ratio 1 -> -2; ratio 1.5 clipped at 1.2 -> -2.4; ratio .5 with A<0 -> min(-.5, -.8)*-1 = .8
    assert loss.detach().tolist()[0] == pytest.approx([-2.0, -2.4, 0.8])
    assert m["loss/clip_frac"] == pytest.approx(2 / 3)
    loss.sum().backward()
    # clipped tokens pass no gradient
    assert logp.grad[0, 1].item() == 0 and logp.grad[0, 2].item() == 0
    assert logp.grad[0, 0].item() == pytest.approx(-2.0)


def test_config_rejects_unknown_keys_and_names():
    with pytest.raises(ConfigError, match="unknown TrainConfig key"):
        TrainConfig.from_dict({"lr": 1e-3, "lerning_rate": 1})
    with pytest.raises(ConfigError, match="unknown advantage estimator"):
        TrainConfig(estimator="ppo")
    with pytest.raises(ConfigError, match="did you mean 'sampling'"):
        TrainConfig.from_dict({"collect": {"smapling": {}}})
    with pytest.raises(ConfigError, match="unknown policy loss"):
        TrainConfig(loss="nope")
    assert {"ppo_clip", "reinforce"} <= set(policy_losses())


def _logp_of_samples(trainer, traj):
    led = traj.ledger
    ids = torch.tensor([led.input_ids])
    with torch.no_grad():
        lp = trainer.token_logprobs(ids, torch.ones_like(ids))[0]
    return sum(lp[i - 1].item() for i, m in enumerate(led.loss_mask) if m)


def _two_echo_samples(policy):
    """Two sampled trajectories (one group) of the Echo env."""
    cfg = CollectConfig(
        group_size=2,
        progress=False,
        sampling=SamplingParams(temperature=1.0, max_new_tokens=4, seed=0),
    )
    return Collector(policy, cfg).collect("test/Echo-v0", [0])


def test_update_moves_probability_toward_positive_advantage(tiny_policy):
    trajs = _two_echo_samples(tiny_policy)
    trainer = Trainer(tiny_policy.model, TrainConfig(lr=1e-2))
    before = [_logp_of_samples(trainer, t) for t in trajs]
    metrics = trainer.update(trajs, [1.0, -1.0])
    after = [_logp_of_samples(trainer, t) for t in trajs]
    assert after[0] > before[0] and after[1] < before[1]
    # first update is on-policy: ratios are 1, nothing clipped
    assert metrics["loss/clip_frac"] == 0.0
    assert abs(metrics["loss/approx_kl"]) < 1e-4
    assert metrics["perf/trained_samples"] == 2.0


def test_zero_advantages_change_nothing(tiny_policy):
    cfg = CollectConfig(sampling=SamplingParams(max_new_tokens=3), progress=False)
    trajs = Collector(tiny_policy, cfg).collect("test/Echo-v0", [0])
    params = [p.detach().clone() for p in tiny_policy.model.parameters()]
    m = Trainer(tiny_policy.model, TrainConfig(lr=1.0)).update(trajs, [0.0])
    assert m["perf/trained_samples"] == 0.0
    assert all(
        torch.equal(a, b) for a, b in zip(params, tiny_policy.model.parameters(), strict=True)
    )


def test_train_loop_writes_metrics_and_rollouts(tiny_policy, tmp_path):
    cfg = TrainConfig(
        env_id="test/Echo-v0",
        steps=2,
        tasks_per_step=2,
        collect=CollectConfig(group_size=2, sampling=SamplingParams(max_new_tokens=3)),
        lr=1e-3,
        out_dir=str(tmp_path / "run"),
        eval_seeds=2,
        save_model=True,
    )
    result = train(cfg, policy=tiny_policy, progress=False)
    assert [int(h["step"]) for h in result.history] == [1, 2]
    for h in result.history:
        assert not math.isnan(h["loss/policy"])
        assert h["rollout/episodes"] == 4.0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # eval before, 2 steps, eval after
    assert sorted(p.name for p in (tmp_path / "run" / "rollouts").iterdir()) == [
        "step00000.jsonl",
        "step00001.jsonl",
    ]
    assert (tmp_path / "run" / "model" / "config.json").exists()
    assert result.success_before is not None and result.success_after is not None


def test_lr_warmup_ramps_linearly_then_holds(tiny_policy):
    trajs = _two_echo_samples(tiny_policy)
    trainer = Trainer(tiny_policy.model, TrainConfig(lr=1e-3, lr_warmup_steps=4, epochs=1))
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / 4)
    seen = [trainer.update(trajs, [1.0, -1.0])["optim/lr"] for _ in range(5)]
    assert seen == pytest.approx([2e-3 / 4, 3e-3 / 4, 1e-3, 1e-3, 1e-3])
    plain = Trainer(tiny_policy.model, TrainConfig(lr=1e-3))
    assert plain.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_lr_cosine_decay_reaches_the_floor_on_the_last_optimizer_step(tiny_policy):
    # 3 steps x 2 epochs = 6 optimizer steps: 2 of warm-up (0.5, 1.0), then a half
    # cosine over the other 4 from 1.0 down to lr_min_ratio=0.1 on the 6th.
    cfg = TrainConfig(
        lr=1e-3, steps=3, epochs=2, lr_warmup_steps=2, lr_schedule="cosine", lr_min_ratio=0.1
    )
    trainer = Trainer(tiny_policy.model, cfg)
    trajs = _two_echo_samples(tiny_policy)
    used = [trainer.optimizer.param_groups[0]["lr"]]
    for _ in range(3):
        trainer.update(trajs, [1.0, -1.0])
        used.append(trainer.optimizer.param_groups[0]["lr"])
    # lr before update 1, then after each update (= before the next optimizer step)
    assert used == pytest.approx([0.5e-3, 1e-3, 0.325e-3, 0.1e-3])
    with pytest.raises(ConfigError, match="lr_schedule must be"):
        TrainConfig(lr_schedule="step")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lr_min_ratio"):
        TrainConfig(lr_min_ratio=1.5)


def test_entropy_bonus_raises_the_policy_entropy_even_without_advantage(tiny_policy):
    # Zero advantages: the policy term is 0 and, without a bonus, nothing is trained at
    # all. With entropy_coef the update ascends the tokens' entropy.
    trajs = _two_echo_samples(tiny_policy)
    plain = Trainer(tiny_policy.model, TrainConfig(lr=1e-2))
    assert plain.update(trajs, [0.0, 0.0])["perf/trained_samples"] == 0
    trainer = Trainer(tiny_policy.model, TrainConfig(lr=1e-2, entropy_coef=1.0, epochs=2))
    seen = [trainer.update(trajs, [0.0, 0.0])["policy/entropy"] for _ in range(4)]
    assert seen[-1] > seen[0] + 0.01, seen  # the metric is taken before each update
    assert seen == sorted(seen), seen
    with pytest.raises(ConfigError, match="entropy_coef"):
        TrainConfig(entropy_coef=-0.1)
